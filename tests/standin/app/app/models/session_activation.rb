# frozen_string_literal: true

require 'securerandom'

# A signed-in browser (stand-in): the `_session_id` cookie holds session_id.
class SessionActivation < ApplicationRecord
  belongs_to :user

  before_validation on: :create do
    self.session_id ||= SecureRandom.hex
  end
end
