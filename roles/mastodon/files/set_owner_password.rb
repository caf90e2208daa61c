# frozen_string_literal: true

# Sets the password of a local account from standard input (never from the command line,
# so it does not show up in process lists or logs). Usage:
#   bin/rails runner set_owner_password.rb USERNAME < password
username = ARGV.first.to_s
password = $stdin.read.to_s.chomp
abort 'usage: set_owner_password.rb USERNAME < password' if username.empty? || password.empty?

account = Account.find_local(username)
abort "no local account named #{username}" if account.nil? || account.user.nil?

user = account.user
user.password = password
user.password_confirmation = password if user.respond_to?(:password_confirmation=)
user.save!
puts 'password set'
