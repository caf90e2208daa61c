# frozen_string_literal: true

# Stand-in pre-deployment migration that breaks the previous release (build-repo.sh
# --with-breaking-tag, upgrade/rollback tests): it renames the table the old code's jobs write
# to, which a real pre-deployment migration must never do. The migration itself succeeds; the
# old release's Sidekiq jobs then fail, so its health gate does.
class StandinRenameJobRuns < ActiveRecord::Migration[6.1]
  def up
    rename_table :standin_job_runs, :standin_job_runs_renamed
    execute(<<~SQL.squish)
      INSERT INTO standin_data_migrations (version, rows_changed, ran_at)
      VALUES (#{connection.quote(version.to_s)}, 0, now() AT TIME ZONE 'UTC')
    SQL
  end

  def down
    rename_table :standin_job_runs_renamed, :standin_job_runs
  end
end
