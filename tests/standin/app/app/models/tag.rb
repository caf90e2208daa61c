# frozen_string_literal: true

# Hashtags (stand-in), stored once in any case; `find_normalized` matches case-insensitively.
class Tag < ApplicationRecord
  has_and_belongs_to_many :statuses, join_table: :statuses_tags

  validates :name, presence: true, format: { with: /\A[[:word:]_]+\z/ }

  def self.find_normalized(name)
    find_by('lower(name) = ?', name.to_s.delete_prefix('#').downcase)
  end

  def self.find_or_create_normalized!(name)
    find_normalized(name) || create!(name: name.to_s.delete_prefix('#'))
  end
end
