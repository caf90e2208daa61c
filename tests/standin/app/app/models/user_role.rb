# frozen_string_literal: true

# Roles (stand-in): Owner, Admin, Moderator and the implicit everyone role (id -99).
class UserRole < ApplicationRecord
  EVERYONE_ROLE_ID = -99
  FLAGS = {
    administrator: 1 << 0,
    manage_federation: 1 << 5,
    manage_settings: 1 << 6,
    manage_rules: 1 << 7,
    manage_users: 1 << 10,
    manage_reports: 1 << 4,
  }.freeze

  has_many :users, inverse_of: :role, foreign_key: 'role_id', dependent: :nullify

  validates :name, presence: true, unless: :everyone?

  def self.everyone
    find_by(id: EVERYONE_ROLE_ID) || create!(id: EVERYONE_ROLE_ID, name: '', position: -1, permissions: 0)
  end

  def everyone?
    id == EVERYONE_ROLE_ID
  end

  def can?(*flags)
    return true if (permissions & FLAGS[:administrator]).positive?

    flags.all? { |flag| (permissions & FLAGS.fetch(flag)).positive? }
  end
end
