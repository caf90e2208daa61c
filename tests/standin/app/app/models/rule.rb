# frozen_string_literal: true

# Server rule (stand-in). Soft-deleted through deleted_at like Mastodon's Discard usage.
class Rule < ApplicationRecord
  TEXT_SIZE_LIMIT = 300

  validates :text, presence: true, length: { maximum: TEXT_SIZE_LIMIT }

  scope :kept, -> { where(deleted_at: nil) }
  scope :discarded, -> { where.not(deleted_at: nil) }
  scope :ordered, -> { kept.order(priority: :asc, id: :asc) }

  def discard
    return false if discarded?

    update(deleted_at: Time.now.utc)
  end

  def undiscard
    update(deleted_at: nil)
  end

  def discarded?
    deleted_at.present?
  end

  def kept?
    !discarded?
  end
end
