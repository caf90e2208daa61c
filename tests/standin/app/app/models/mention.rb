# frozen_string_literal: true

# Mentions (stand-in): the accounts a status mentions.
class Mention < ApplicationRecord
  belongs_to :account
  belongs_to :status, inverse_of: :mentions
end
