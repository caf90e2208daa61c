# frozen_string_literal: true

# Statuses (stand-in): text, visibility, the status it replies to or boosts, hashtags, mentions
# and favourites. Ids are snowflakes (the column default, db/migrate/…interaction_tables.rb).
class Status < ApplicationRecord
  # app/models/status.rb: `enum :visibility, { public: 0, unlisted: 1, private: 2, direct: 3,
  # limited: 4 }`; kept as a plain mapping so that no scope shadows ActiveRecord's `public`.
  VISIBILITIES = %w(public unlisted private direct limited).freeze

  belongs_to :account, inverse_of: :statuses
  belongs_to :thread, class_name: 'Status', foreign_key: :in_reply_to_id, optional: true, inverse_of: :replies
  belongs_to :reblog, class_name: 'Status', foreign_key: :reblog_of_id, optional: true, inverse_of: :reblogs
  has_many :replies, class_name: 'Status', foreign_key: :in_reply_to_id, inverse_of: :thread, dependent: :nullify
  has_many :reblogs, class_name: 'Status', foreign_key: :reblog_of_id, inverse_of: :reblog, dependent: :destroy
  has_many :media_attachments, inverse_of: :status, dependent: :nullify
  has_many :favourites, inverse_of: :status, dependent: :destroy
  has_many :mentions, inverse_of: :status, dependent: :destroy
  has_and_belongs_to_many :tags, join_table: :statuses_tags

  # What a visitor, or a token of someone who follows no one, may see: public and unlisted.
  scope :distributable, -> { where(visibility: [0, 1]) }

  def visibility_name
    VISIBILITIES.fetch(visibility, 'public')
  end

  def distributable?
    [0, 1].include?(visibility)
  end
end
