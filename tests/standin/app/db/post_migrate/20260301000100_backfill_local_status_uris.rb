# frozen_string_literal: true

# Stand-in post-deployment migration shipped with v4.6.0: gives every local status that has no
# `uri` yet the URI Mastodon's ActivityPub::TagManager gives local statuses,
# https://WEB_DOMAIN/users/USERNAME/statuses/ID (WEB_DOMAIN defaults to LOCAL_DOMAIN, then to
# localhost). Post-deployment, so that the rows the old code still writes during the deployment
# are covered too. Records the rows it changed in standin_data_migrations. Irreversible.
class BackfillLocalStatusUris < ActiveRecord::Migration[6.1]
  def up
    host = ENV['WEB_DOMAIN'].presence || ENV['LOCAL_DOMAIN'].presence || 'localhost'
    rows = say_with_time('backfill statuses.uri of local statuses') do
      connection.update(<<~SQL.squish)
        UPDATE statuses
        SET uri = #{connection.quote("https://#{host}/users/")} || accounts.username || '/statuses/' || statuses.id
        FROM accounts
        WHERE accounts.id = statuses.account_id AND accounts.domain IS NULL AND statuses.uri IS NULL
      SQL
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
