# frozen_string_literal: true

# Stand-in seeds: the built-in roles, like Mastodon's.
UserRole.everyone
{
  'Moderator' => [10, UserRole::FLAGS[:manage_reports] | UserRole::FLAGS[:manage_users]],
  'Admin' => [100, UserRole::FLAGS.values_at(:manage_reports, :manage_users, :manage_federation,
                                              :manage_settings, :manage_rules).reduce(:|)],
  'Owner' => [1000, UserRole::FLAGS[:administrator]],
}.each do |name, (position, permissions)|
  role = UserRole.find_or_initialize_by(name: name)
  role.update!(position: position, permissions: permissions, highlighted: true)
end
