# frozen_string_literal: true

class Status < ApplicationRecord
  belongs_to :account, inverse_of: :statuses
  has_many :media_attachments, inverse_of: :status, dependent: :nullify
end
