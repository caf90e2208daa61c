# frozen_string_literal: true

require 'securerandom'
require 'openssl'
require 'active_support/security_utils'

# Users (stand-in): login, role, approval, password hash and an encrypted second-factor secret.
class User < ApplicationRecord
  PASSWORD_ITERATIONS = 10_000

  belongs_to :account, inverse_of: :user
  belongs_to :role, class_name: 'UserRole', optional: true, inverse_of: :users

  validates :email, presence: true, uniqueness: { case_sensitive: false, message: 'has already been taken' }
  validates_associated :account

  accepts_nested_attributes_for :account

  def role
    role_id.nil? ? UserRole.everyone : super
  end

  def otp_secret
    Standin::Encryption.decrypt(self[:otp_secret])
  end

  def otp_secret=(value)
    self[:otp_secret] = Standin::Encryption.encrypt(value)
  end

  def password=(new_password)
    salt = SecureRandom.hex(16)
    digest = OpenSSL::PKCS5.pbkdf2_hmac(new_password.to_s, salt, PASSWORD_ITERATIONS, 32, OpenSSL::Digest.new('SHA256'))
    self.encrypted_password = "pbkdf2-sha256$#{PASSWORD_ITERATIONS}$#{salt}$#{digest.unpack1('H*')}"
  end

  def valid_password?(candidate)
    _, iterations, salt, hex = encrypted_password.to_s.split('$')
    return false if hex.nil?

    digest = OpenSSL::PKCS5.pbkdf2_hmac(candidate.to_s, salt, iterations.to_i, 32, OpenSSL::Digest.new('SHA256'))
    ActiveSupport::SecurityUtils.secure_compare(digest.unpack1('H*'), hex)
  end

  def confirmed?
    confirmed_at.present?
  end

  def confirm
    update!(confirmed_at: Time.now.utc) unless confirmed?
  end

  def approve!
    update!(approved: true)
  end

  def otp_required_for_login?
    otp_required_for_login
  end
end
