# frozen_string_literal: true

# Accounts (stand-in). domain nil = local account.
class Account < ApplicationRecord
  USERNAME_RE = /\A[a-z0-9_]+([a-z0-9_.-]+[a-z0-9_]+)?\z/i

  has_one :user, inverse_of: :account, dependent: :destroy
  has_many :statuses, inverse_of: :account, dependent: :destroy
  has_many :media_attachments, inverse_of: :account, dependent: :destroy
  has_many :favourites, dependent: :destroy

  validates :username, presence: true, format: { with: USERNAME_RE }
  validates :username, uniqueness: { scope: :domain, case_sensitive: false, message: 'has already been taken' }

  scope :local, -> { where(domain: nil) }
  scope :remote, -> { where.not(domain: nil) }

  def self.find_local(username)
    local.find_by('lower(username) = ?', username.to_s.downcase)
  end

  def self.find_remote(username, domain)
    remote.find_by('lower(username) = ? AND lower(domain) = ?', username.to_s.downcase, domain.to_s.downcase)
  end

  def local?
    domain.nil?
  end

  def acct
    local? ? username : "#{username}@#{domain}"
  end

  # The profile page (ActivityPub::TagManager#url_for): a local account's on the web domain, a
  # remote account's as its server announced it (accounts.url).
  def profile_url(web_domain)
    local? ? "https://#{web_domain}/@#{username}" : (url.presence || "https://#{domain}/@#{username}")
  end

  def actor_uri(web_domain)
    local? ? "https://#{web_domain}/users/#{username}" : "https://#{domain}/users/#{username}"
  end
end
