# frozen_string_literal: true

# Stand-in post-deployment migration of the failing-post tag: succeeds. Sets
# statuses.standin_language to 'und' wherever it is still NULL and records the rows it changed
# in standin_data_migrations. Irreversible.
class BackfillStandinLanguageOfStatuses < ActiveRecord::Migration[6.1]
  def up
    rows = say_with_time('backfill statuses.standin_language') do
      connection.update("UPDATE statuses SET standin_language = 'und' WHERE standin_language IS NULL")
    end
    execute(<<~SQL.squish)
      INSERT INTO standin_data_migrations (version, rows_changed, ran_at)
      VALUES (#{connection.quote(version.to_s)}, #{Integer(rows)}, now() AT TIME ZONE 'UTC')
    SQL
  end

  def down
    raise ActiveRecord::IrreversibleMigration
  end
end
