# frozen_string_literal: true

# Stand-in migration shipped with v4.7.0 (pre-deployment): adds the nullable column
# statuses.standin_search_text (the code of 4.6 keeps working on this schema), backfilled in one
# UPDATE with lower(text), and records the rows it changed in standin_data_migrations.
class AddStandinSearchTextToStatuses < ActiveRecord::Migration[6.1]
  def up
    add_column :statuses, :standin_search_text, :text
    rows = say_with_time('backfill statuses.standin_search_text') do
      connection.update('UPDATE statuses SET standin_search_text = lower(text)')
    end
    record_data_migration(rows)
  end

  def down
    remove_column :statuses, :standin_search_text
    execute("DELETE FROM standin_data_migrations WHERE version = #{connection.quote(version.to_s)}")
  end

  private

  def record_data_migration(rows)
    execute(<<~SQL.squish)
      INSERT INTO standin_data_migrations (version, rows_changed, ran_at)
      VALUES (#{connection.quote(version.to_s)}, #{Integer(rows)}, now() AT TIME ZONE 'UTC')
    SQL
  end
end
