# frozen_string_literal: true

# instance_settings/token.rb -- the admin API token the role uses for domain blocks/allows.
#
# STDIN: {"dry_run": bool, "owner": "admin", "app_name": "...", "scopes": "admin:read admin:write"}
# Finds the OAuth application by name (creates it when missing) and the newest non-revoked
# access token of that application for the owner with exactly those scopes (creates one when
# missing). Re-running finds the same token, so nothing is stored outside Mastodon's database.
#
# Prints `INSTANCE_SETTINGS_RESULT {json}` with changes and `token` (null in dry-run mode when
# no token exists yet). The Ansible task that runs this script has no_log: true.

require 'json'

input = JSON.parse($stdin.read)
dry_run = input.fetch('dry_run') != false
owner_name = input.fetch('owner')
app_name = input.fetch('app_name')
scopes = input.fetch('scopes')
wanted_scopes = scopes.split.sort

owner = Account.find_local(owner_name)
if owner&.user.nil?
  puts "INSTANCE_SETTINGS_RESULT #{JSON.generate('error' => "the owner account #{owner_name.inspect} does not exist")}"
  exit 1
end

changes = []
app = Doorkeeper::Application.find_by(name: app_name)
token = nil
if app.nil?
  changes << { 'action' => 'create_application', 'name' => app_name, 'scopes' => scopes }
else
  token = Doorkeeper::AccessToken
          .where(application_id: app.id, resource_owner_id: owner.user.id, revoked_at: nil)
          .order(id: :desc)
          .find { |candidate| candidate.scopes.to_s.split.sort == wanted_scopes }
end
changes << { 'action' => 'create_token', 'application' => app_name, 'owner' => owner.username, 'scopes' => scopes } if token.nil?

unless dry_run || token
  Doorkeeper::Application.transaction do
    app ||= Doorkeeper::Application.create!(name: app_name, redirect_uri: 'urn:ietf:wg:oauth:2.0:oob', scopes: scopes)
    token = Doorkeeper::AccessToken.create!(application_id: app.id, resource_owner_id: owner.user.id, scopes: scopes)
  end
end

result = { 'changes' => changes, 'token' => token&.token }
puts "INSTANCE_SETTINGS_RESULT #{JSON.generate(result)}"
