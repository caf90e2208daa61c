# frozen_string_literal: true

# Federation: allowed domains in limited federation mode (stand-in).
class DomainAllow < ApplicationRecord
  before_validation { self.domain = domain.to_s.strip.downcase }
  validates :domain, presence: true, uniqueness: true
end
