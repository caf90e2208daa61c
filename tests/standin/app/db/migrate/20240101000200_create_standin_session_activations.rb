# frozen_string_literal: true

# Stand-in schema for signed-in browsers: one row per session, as Mastodon's session_activations
# (the signed `_session_id` cookie names the row; config/initializers/devise.rb looks it up on
# every request and signs out a browser whose row is gone).
class CreateStandinSessionActivations < ActiveRecord::Migration[6.1]
  def change
    create_table :session_activations do |t|
      t.string :session_id, null: false
      t.references :user, null: false, foreign_key: { on_delete: :cascade }
      t.string :user_agent, null: false, default: ''
      t.inet :ip
      t.timestamps
    end
    add_index :session_activations, :session_id, unique: true
  end
end
