# frozen_string_literal: true

require 'securerandom'

module Doorkeeper
  # OAuth access tokens (stand-in for the doorkeeper gem's model).
  class AccessToken < ApplicationRecord
    self.table_name = 'oauth_access_tokens'

    belongs_to :application, class_name: 'Doorkeeper::Application', optional: true, inverse_of: :access_tokens

    scope :active, -> { where(revoked_at: nil) }

    before_validation on: :create do
      self.token ||= SecureRandom.urlsafe_base64(32)
    end

    def self.by_token(token)
      active.find_by(token: token.to_s)
    end

    def scope_list
      scopes.to_s.split
    end

    def includes_scope?(wanted)
      parts = wanted.split(':')
      candidates = (1..parts.size).map { |n| parts.first(n).join(':') }
      (scope_list & candidates).any?
    end

    def revoked?
      revoked_at.present?
    end

    def revoke
      update!(revoked_at: Time.now.utc) unless revoked?
    end

    def resource_owner
      User.find_by(id: resource_owner_id)
    end
  end
end
