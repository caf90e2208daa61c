# frozen_string_literal: true

# Mastodon STAND-IN boot file: loads .env.production, refuses to boot without the secrets
# Mastodon requires, connects ActiveRecord and loads the models. Every entry point
# (puma, sidekiq, bin/rails, bin/tootctl) requires this file.

APP_ROOT = File.expand_path('..', __dir__) unless defined?(APP_ROOT)
$LOAD_PATH.unshift(File.join(APP_ROOT, 'lib')) unless $LOAD_PATH.include?(File.join(APP_ROOT, 'lib'))

require 'standin/dotenv'

ENV['RAILS_ENV'] ||= ENV['RACK_ENV'] || 'development'
Standin::Dotenv.load(File.join(APP_ROOT, ".env.#{ENV['RAILS_ENV']}"))

module Standin
  REQUIRED_SECRETS = %w(
    SECRET_KEY_BASE
    VAPID_PRIVATE_KEY
    VAPID_PUBLIC_KEY
    ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY
    ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY
    ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT
  ).freeze

  class BootError < StandardError; end

  def self.check_secrets!
    missing = REQUIRED_SECRETS.select { |name| ENV.fetch(name, '').strip.empty? }
    return if missing.empty?

    raise BootError, "Refusing to boot: missing required secret(s) #{missing.join(', ')}. " \
                     'Set them in .env.production (Active Record encryption keys come from ' \
                     '`bin/rails db:encryption:init` and must never change once set).'
  end
end

begin
  Standin.check_secrets!
rescue Standin::BootError => e
  warn e.message
  exit 1
end

require 'logger'
require 'yaml'
require 'active_support'
require 'active_support/core_ext'
require 'active_record'
require 'standin/encryption'
require 'mastodon/version'

module Standin
  def self.root
    APP_ROOT
  end

  def self.env
    ENV['RAILS_ENV']
  end

  def self.database_config
    host = ENV.fetch('DB_HOST', '/var/run/postgresql')
    config = {
      adapter: 'postgresql',
      host: host,
      port: ENV.fetch('DB_PORT', 5432).to_i,
      database: ENV.fetch('DB_NAME', "mastodon_#{env}"),
      username: ENV.fetch('DB_USER', nil).presence,
      password: ENV.fetch('DB_PASS', nil).presence,
      pool: ENV.fetch('DB_POOL', ENV.fetch('MAX_THREADS', 5)).to_i,
      # As upstream's database config reads it: PgBouncer's transaction pooling needs 'false'.
      prepared_statements: ENV.fetch('PREPARED_STATEMENTS', 'true') != 'false',
    }
    config.compact
  end

  def self.redis_url
    return ENV['REDIS_URL'] if ENV['REDIS_URL'].present?

    password = ENV['REDIS_PASSWORD'].present? ? ":#{ERB::Util.url_encode(ENV['REDIS_PASSWORD'])}@" : ''
    "redis://#{password}#{ENV.fetch('REDIS_HOST', 'localhost')}:#{ENV.fetch('REDIS_PORT', 6379)}/0"
  end

  def self.connect!
    ActiveRecord::Base.establish_connection(database_config)
  end
end

require 'erb'
ActiveRecord::Base.logger = nil
# ActiveRecord 7 moved the setting from Base to the ActiveRecord module (6.1 has only Base's).
if ActiveRecord.respond_to?(:default_timezone=)
  ActiveRecord.default_timezone = :utc
else
  ActiveRecord::Base.default_timezone = :utc
end
Standin.connect!

require 'redis'
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)
require 'sidekiq'
Sidekiq.configure_client { |config| config.redis = { url: Standin.redis_url } }
Sidekiq.configure_server { |config| config.redis = { url: Standin.redis_url } }

require File.join(APP_ROOT, 'app/models/application_record.rb')
Dir[File.join(APP_ROOT, 'app/models/**/*.rb')].sort.each { |file| require file }
Dir[File.join(APP_ROOT, 'app/workers/**/*.rb')].sort.each { |file| require file }
