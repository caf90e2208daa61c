# frozen_string_literal: true

# Mastodon STAND-IN puma configuration, driven by the same environment variables as
# Mastodon's: MAX_THREADS, WEB_CONCURRENCY, PORT, BIND, SOCKET, RAILS_ENV.
max_threads = Integer(ENV.fetch('MAX_THREADS', 5))
threads max_threads, max_threads

if ENV['SOCKET'].to_s.empty?
  bind "tcp://#{ENV.fetch('BIND', '127.0.0.1')}:#{ENV.fetch('PORT', 3000)}"
else
  bind "unix://#{ENV['SOCKET']}"
end

environment ENV.fetch('RAILS_ENV', 'development')
workers Integer(ENV.fetch('WEB_CONCURRENCY', 2))

preload_app!

on_worker_boot do
  ActiveRecord::Base.establish_connection(Standin.database_config) if defined?(Standin)
end

before_fork do
  ActiveRecord::Base.connection_pool.disconnect! if defined?(ActiveRecord::Base)
end

plugin :tmp_restart
