# frozen_string_literal: true

# instance_settings/staff.rb -- staff roles as code.
#
# STDIN: {"dry_run": bool, "owner": "admin", "marker_key": "...", "defer_missing": bool,
#         "staff": [{"username": "alice", "email": "...", "role": "Moderator"}, ...]}
#
# - the owner must exist and gets the Owner role;
# - each listed account gets its role; a listed account that does not exist yet is reported as
#   {action: create} (the role creates it with `tootctl accounts create`, then runs this
#   script again). Roles are only applied when no account is missing: otherwise the script
#   fails, or with defer_missing (the role's first pass) writes nothing and reports
#   `deferred: true` with the same changes;
# - the usernames this role has given a staff role are kept in Setting[marker_key]; an account
#   in that list but no longer in the inventory is demoted to the default role, never deleted.
#   Accounts promoted by hand in the web UI are not in the list and are left alone.
#
# Prints `INSTANCE_SETTINGS_RESULT {json}` with changes, before/after for --diff.

require 'json'

input = JSON.parse($stdin.read)
dry_run = input.fetch('dry_run') != false
defer_missing = input.fetch('defer_missing', false) == true
owner_name = input.fetch('owner')
marker_key = input.fetch('marker_key')
staff = input.fetch('staff')

# '' stands for the default role (Mastodon's UserRole.everyone, id -99). Not calling
# UserRole.everyone here keeps a dry run read-only (it may create that row).
def role_name(user)
  return '' if user.role_id.nil? || user.role_id == -99

  user.role&.name.to_s
end

def fail_with(message)
  puts "INSTANCE_SETTINGS_RESULT #{JSON.generate('error' => message)}"
  exit 1
end

roles = {}
(staff.map { |member| member['role'] } + ['Owner']).uniq.each do |name|
  roles[name] = UserRole.find_by(name: name) || fail_with("the role #{name.inspect} does not exist on the server")
end

owner = Account.find_local(owner_name)
fail_with("the owner account #{owner_name.inspect} does not exist (the mastodon role creates it)") if owner&.user.nil?

managed_before = Array(Setting[marker_key]).map(&:to_s).map(&:downcase).sort
wanted = staff.map { |member| member['username'].downcase }
changes = []
before = {}
after = {}
plan = []

before[owner.username] = role_name(owner.user)
after[owner.username] = 'Owner'
if before[owner.username] != 'Owner'
  changes << { 'action' => 'set_role', 'username' => owner.username, 'before' => before[owner.username], 'after' => 'Owner' }
  plan << [owner.user, roles['Owner']]
end

staff.each do |member|
  account = Account.find_local(member['username'])
  after[member['username']] = member['role']
  if account&.user.nil?
    before[member['username']] = nil
    changes << { 'action' => 'create', 'username' => member['username'], 'email' => member['email'], 'role' => member['role'] }
    next
  end

  current = role_name(account.user)
  before[member['username']] = current
  next if current == member['role']

  changes << { 'action' => 'set_role', 'username' => account.username, 'before' => current, 'after' => member['role'] }
  plan << [account.user, roles[member['role']]]
end

(managed_before - wanted).each do |username|
  account = Account.find_local(username)
  next if account&.user.nil?

  current = role_name(account.user)
  before[account.username] = current
  after[account.username] = ''
  next if current == ''

  changes << { 'action' => 'demote', 'username' => account.username, 'before' => current, 'after' => '' }
  plan << [account.user, nil]
end

managed_after = wanted.sort
if managed_after != managed_before
  changes << { 'action' => 'track', 'key' => marker_key, 'before' => managed_before, 'after' => managed_after }
end

missing = changes.any? { |change| change['action'] == 'create' }
fail_with('create the missing accounts before applying roles') if missing && !dry_run && !defer_missing
deferred = missing && !dry_run

unless dry_run || deferred || changes.empty?
  User.transaction do
    plan.each do |user, role|
      user.role = role
      user.save!
    end
    Setting[marker_key] = managed_after if managed_after != managed_before
  end
end

result = { 'changes' => changes, 'before' => before, 'after' => after }
result['deferred'] = true if deferred
puts "INSTANCE_SETTINGS_RESULT #{JSON.generate(result)}"
