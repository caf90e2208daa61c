# frozen_string_literal: true

# Federation: blocked domains (stand-in).
class DomainBlock < ApplicationRecord
  SEVERITIES = { silence: 0, suspend: 1, noop: 2 }.freeze
  # ActiveRecord 7 takes the enum name positionally (its keyword form is deprecated in 7.2);
  # 6.1 knows only the keyword form.
  if ActiveRecord.version >= Gem::Version.new('7.0')
    enum :severity, SEVERITIES
  else
    enum severity: SEVERITIES
  end

  before_validation { self.domain = domain.to_s.strip.downcase }
  validates :domain, presence: true, uniqueness: true
end
