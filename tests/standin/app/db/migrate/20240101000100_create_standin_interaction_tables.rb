# frozen_string_literal: true

# Stand-in schema for the public conversation the course analytics reads (the REST API's
# hashtag timeline, context, favourited_by and reblogged_by): replies and boosts on statuses,
# hashtags, mentions, favourites and the accounts' profile fields, in Mastodon's table and column
# names. Status ids are snowflakes, as Mastodon's (lib/mastodon/snowflake.rb: milliseconds since
# the epoch shifted 16 bits, plus a sequence), so that a client's max_id/since_id made from a
# time (Mastodon.py turns a datetime into one) selects by time as it does upstream.
class CreateStandinInteractionTables < ActiveRecord::Migration[6.1]
  def up
    execute(<<~SQL.squish)
      ALTER TABLE statuses ALTER COLUMN id SET DEFAULT
        ((floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint << 16) | (nextval('statuses_id_seq') % 65536))
    SQL
    add_column :statuses, :in_reply_to_id, :bigint
    add_column :statuses, :reblog_of_id, :bigint
    add_index :statuses, :in_reply_to_id
    add_index :statuses, :reblog_of_id
    add_column :accounts, :fields, :jsonb, null: false, default: []
    add_column :accounts, :url, :string

    create_table :tags do |t|
      t.string :name, null: false, default: ''
      t.timestamps
    end
    add_index :tags, 'lower(name)', unique: true, name: 'index_tags_on_name_lower'

    create_table :statuses_tags, id: false do |t|
      t.references :status, null: false, foreign_key: { on_delete: :cascade }
      t.references :tag, null: false, foreign_key: { on_delete: :cascade }
    end
    add_index :statuses_tags, %i(tag_id status_id), unique: true

    create_table :mentions do |t|
      t.references :status, null: false, foreign_key: { on_delete: :cascade }
      t.references :account, null: false, foreign_key: { on_delete: :cascade }
      t.timestamps
    end

    create_table :favourites do |t|
      t.references :account, null: false, foreign_key: { on_delete: :cascade }
      t.references :status, null: false, foreign_key: { on_delete: :cascade }
      t.timestamps
    end
    add_index :favourites, %i(account_id status_id), unique: true
  end

  def down
    drop_table :favourites
    drop_table :mentions
    drop_table :statuses_tags
    drop_table :tags
    remove_column :accounts, :url
    remove_column :accounts, :fields
    remove_column :statuses, :reblog_of_id
    remove_column :statuses, :in_reply_to_id
    execute("ALTER TABLE statuses ALTER COLUMN id SET DEFAULT nextval('statuses_id_seq')")
  end
end
