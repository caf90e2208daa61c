# frozen_string_literal: true

# Stand-in migration shipped with v4.6.0 (pre-deployment). Creates standin_data_migrations, in
# which every stand-in data migration from here on records how many rows it changed (tests
# assert exactly which ones ran), and adds statuses.words_count (nullable, so the code of 4.5
# keeps working on this schema), backfilled in one UPDATE with the number of
# whitespace-separated words of each status's text.
class AddWordsCountToStatuses < ActiveRecord::Migration[6.1]
  def up
    create_table :standin_data_migrations, id: :string, primary_key: :version do |t|
      t.integer :rows_changed, null: false
      t.datetime :ran_at, null: false
    end
    add_column :statuses, :words_count, :integer
    rows = say_with_time('backfill statuses.words_count') do
      connection.update(<<~'SQL'.squish)
        UPDATE statuses
        SET words_count = (SELECT count(*) FROM regexp_matches(statuses.text, '\S+', 'g'))
      SQL
    end
    record_data_migration(rows)
  end

  def down
    remove_column :statuses, :words_count
    drop_table :standin_data_migrations
  end

  private

  def record_data_migration(rows)
    execute(<<~SQL.squish)
      INSERT INTO standin_data_migrations (version, rows_changed, ran_at)
      VALUES (#{connection.quote(version.to_s)}, #{Integer(rows)}, now() AT TIME ZONE 'UTC')
    SQL
  end
end
