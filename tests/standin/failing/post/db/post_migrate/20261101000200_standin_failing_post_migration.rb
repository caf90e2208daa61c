# frozen_string_literal: true

# Stand-in post-deployment migration that always fails (build-repo.sh --with-failing-post-tag):
# it overwrites statuses.standin_language in every row, records itself, then raises, all inside
# the migration's transaction, so PostgreSQL rolls it back: the rows keep what
# BackfillStandinLanguageOfStatuses wrote and schema_migrations does not get this version.
class StandinFailingPostMigration < ActiveRecord::Migration[6.1]
  def up
    rows = say_with_time('overwrite statuses.standin_language') do
      connection.update("UPDATE statuses SET standin_language = 'broken'")
    end
    execute(<<~SQL.squish)
      INSERT INTO standin_data_migrations (version, rows_changed, ran_at)
      VALUES (#{connection.quote(version.to_s)}, #{Integer(rows)}, now() AT TIME ZONE 'UTC')
    SQL
    raise 'Stand-in failing post-deployment migration: this release is broken on purpose'
  end

  def down; end
end
