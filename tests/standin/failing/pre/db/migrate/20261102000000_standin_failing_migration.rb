# frozen_string_literal: true

# Stand-in migration that always fails (build-repo.sh --with-failing-tag, upgrade/rollback
# tests): it changes the schema and records itself, then raises, all inside the migration's
# transaction, so PostgreSQL rolls both back and schema_migrations does not get its version.
class StandinFailingMigration < ActiveRecord::Migration[6.1]
  def up
    add_column :accounts, :standin_half_done, :boolean
    execute(<<~SQL.squish)
      INSERT INTO standin_data_migrations (version, rows_changed, ran_at)
      VALUES (#{connection.quote(version.to_s)}, 0, now() AT TIME ZONE 'UTC')
    SQL
    raise 'Stand-in failing migration: this release is broken on purpose'
  end

  def down; end
end
