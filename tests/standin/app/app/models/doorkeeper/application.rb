# frozen_string_literal: true

require 'securerandom'

module Doorkeeper
  # OAuth applications (stand-in for the doorkeeper gem's model).
  class Application < ApplicationRecord
    self.table_name = 'oauth_applications'

    has_many :access_tokens, class_name: 'Doorkeeper::AccessToken', dependent: :delete_all, inverse_of: :application

    validates :name, :redirect_uri, presence: true

    before_validation on: :create do
      self.uid ||= SecureRandom.urlsafe_base64(32)
      self.secret ||= SecureRandom.urlsafe_base64(32)
    end
  end
end
