# frozen_string_literal: true

# Stand-in post-deployment migration shipped with v4.7.0: every account whose display name is
# empty gets its username as display name, a change of existing rows that only the new release
# is meant to see (a rollback past it needs the database restored, not only the old code).
# Records the rows it changed in standin_data_migrations. Irreversible.
class BackfillAccountDisplayNames < ActiveRecord::Migration[6.1]
  def up
    rows = say_with_time('backfill empty accounts.display_name') do
      connection.update("UPDATE accounts SET display_name = username WHERE display_name = ''")
    end
    record_data_migration(rows)
  end

  def down
    raise ActiveRecord::IrreversibleMigration
  end

  private

  def record_data_migration(rows)
    execute(<<~SQL.squish)
      INSERT INTO standin_data_migrations (version, rows_changed, ran_at)
      VALUES (#{connection.quote(version.to_s)}, #{Integer(rows)}, now() AT TIME ZONE 'UTC')
    SQL
  end
end
