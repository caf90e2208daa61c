# frozen_string_literal: true

# Stand-in pre-deployment migration of the failing-post tag (build-repo.sh
# --with-failing-post-tag): succeeds. Adds the nullable column statuses.standin_language (the
# code of v4.7.0 keeps working on this schema) and records itself (no rows changed).
class AddStandinLanguageToStatuses < ActiveRecord::Migration[6.1]
  def up
    add_column :statuses, :standin_language, :string
    execute(<<~SQL.squish)
      INSERT INTO standin_data_migrations (version, rows_changed, ran_at)
      VALUES (#{connection.quote(version.to_s)}, 0, now() AT TIME ZONE 'UTC')
    SQL
  end

  def down
    remove_column :statuses, :standin_language
    execute("DELETE FROM standin_data_migrations WHERE version = #{connection.quote(version.to_s)}")
  end
end
