# frozen_string_literal: true

# Federation: blocked domains (stand-in).
class DomainBlock < ApplicationRecord
  enum severity: { silence: 0, suspend: 1, noop: 2 }

  before_validation { self.domain = domain.to_s.strip.downcase }
  validates :domain, presence: true, uniqueness: true
end
