# frozen_string_literal: true

require 'openssl'
require 'base64'
require 'json'

# ActiveRecord 6.1 (Debian 12) has no encryption at all; ActiveRecord 7.2 (Debian 13) has
# ActiveRecord::Encryption built in. The stand-in uses its own small cipher on both (below), so
# the stored value and its behaviour are the same on both releases, and it never reopens
# Rails' module. Only the error class is shared: on 7.x the real
# ActiveRecord::Encryption::Errors::Decryption, on 6.1 a class of that name defined here, so
# callers (tests/fixtures/generate.rb) rescue one name everywhere.
if ActiveRecord.version < Gem::Version.new('7.0')
  module ActiveRecord
    module Encryption
      module Errors
        class Base < StandardError; end
        class Configuration < Base; end
        class Decryption < Base; end
      end
    end
  end
end

module Standin
  # What Mastodon relies on from Rails' attribute encryption, imitated: AES-256-GCM with a key
  # derived by PBKDF2-HMAC-SHA256 from the primary key and the key-derivation salt, the
  # payload stored as JSON in the shape Rails uses. Not byte-compatible with real Rails.
  module Encryption
    DecryptionError = ActiveRecord::Encryption::Errors::Decryption
    ConfigurationError = ActiveRecord::Encryption::Errors::Configuration

    ITERATIONS = 2**16
    KEY_LENGTH = 32

    module_function

    def config
      {
        primary_key: ENV.fetch('ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY', ''),
        deterministic_key: ENV.fetch('ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY', ''),
        key_derivation_salt: ENV.fetch('ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT', ''),
      }
    end

    def key
      @key ||= begin
        cfg = config
        raise ConfigurationError, 'Missing Active Record encryption credentials' if cfg[:primary_key].empty? || cfg[:key_derivation_salt].empty?

        OpenSSL::PKCS5.pbkdf2_hmac(cfg[:primary_key], cfg[:key_derivation_salt], ITERATIONS, KEY_LENGTH, OpenSSL::Digest.new('SHA256'))
      end
    end

    def reset_key!
      @key = nil
    end

    def encrypt(clear_text)
      return nil if clear_text.nil?

      cipher = OpenSSL::Cipher.new('aes-256-gcm').encrypt
      cipher.key = key
      iv = cipher.random_iv
      cipher.auth_data = ''
      payload = cipher.update(clear_text.to_s) + cipher.final
      JSON.generate('p' => Base64.strict_encode64(payload),
                    'h' => { 'iv' => Base64.strict_encode64(iv), 'at' => Base64.strict_encode64(cipher.auth_tag) })
    end

    def decrypt(encrypted)
      return nil if encrypted.nil?

      message = JSON.parse(encrypted)
      cipher = OpenSSL::Cipher.new('aes-256-gcm').decrypt
      cipher.key = key
      cipher.iv = Base64.strict_decode64(message.dig('h', 'iv'))
      cipher.auth_tag = Base64.strict_decode64(message.dig('h', 'at'))
      cipher.auth_data = ''
      cipher.update(Base64.strict_decode64(message['p'])) + cipher.final
    rescue OpenSSL::Cipher::CipherError, JSON::ParserError, ArgumentError, TypeError
      raise DecryptionError, 'Decryption failed: wrong Active Record encryption key or corrupt data'
    end
  end
end
