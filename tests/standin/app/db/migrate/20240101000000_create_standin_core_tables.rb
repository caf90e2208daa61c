# frozen_string_literal: true

# Stand-in schema, imitating the tables of Mastodon that the project's roles and tests touch.
class CreateStandinCoreTables < ActiveRecord::Migration[6.1]
  def change
    create_table :user_roles do |t|
      t.string :name, null: false, default: ''
      t.string :color, null: false, default: ''
      t.integer :position, null: false, default: 0
      t.bigint :permissions, null: false, default: 0
      t.boolean :highlighted, null: false, default: false
      t.timestamps
    end

    create_table :accounts do |t|
      t.string :username, null: false, default: ''
      t.string :domain
      t.string :display_name, null: false, default: ''
      t.text :note, null: false, default: ''
      t.datetime :suspended_at
      t.timestamps
    end
    add_index :accounts, 'lower(username), coalesce(lower(domain), \'\')', unique: true, name: 'index_accounts_on_username_and_domain_lower'

    create_table :users do |t|
      t.string :email, null: false, default: ''
      t.references :account, null: false, foreign_key: { on_delete: :cascade }
      t.references :role, foreign_key: { to_table: :user_roles, on_delete: :nullify }
      t.string :encrypted_password, null: false, default: ''
      t.datetime :confirmed_at
      t.boolean :approved, null: false, default: true
      t.boolean :disabled, null: false, default: false
      t.string :otp_secret
      t.boolean :otp_required_for_login, null: false, default: false
      t.string :locale
      t.timestamps
    end
    add_index :users, :email, unique: true

    create_table :statuses do |t|
      t.references :account, null: false, foreign_key: { on_delete: :cascade }
      t.text :text, null: false, default: ''
      t.integer :visibility, null: false, default: 0
      t.string :uri
      t.boolean :legacy_local_only
      t.timestamps
    end

    create_table :media_attachments do |t|
      t.references :account, foreign_key: { on_delete: :nullify }
      t.references :status, foreign_key: { on_delete: :nullify }
      t.string :file_file_name
      t.string :file_content_type
      t.bigint :file_file_size
      t.string :remote_url, null: false, default: ''
      t.integer :type, null: false, default: 0
      t.timestamps
    end

    create_table :preview_cards do |t|
      t.string :url, null: false, default: ''
      t.string :title, null: false, default: ''
      t.string :image_file_name
      t.bigint :image_file_size
      t.timestamps
    end

    create_table :rules do |t|
      t.integer :priority, null: false, default: 0
      t.datetime :deleted_at
      t.text :text, null: false, default: ''
      t.text :hint, null: false, default: ''
      t.timestamps
    end

    create_table :settings do |t|
      t.string :var, null: false
      t.text :value
      t.timestamps
    end
    add_index :settings, :var, unique: true

    create_table :domain_blocks do |t|
      t.string :domain, null: false, default: ''
      t.integer :severity, default: 0
      t.boolean :reject_media, null: false, default: false
      t.boolean :reject_reports, null: false, default: false
      t.text :private_comment
      t.text :public_comment
      t.boolean :obfuscate, null: false, default: false
      t.timestamps
    end
    add_index :domain_blocks, :domain, unique: true

    create_table :domain_allows do |t|
      t.string :domain, null: false, default: ''
      t.timestamps
    end
    add_index :domain_allows, :domain, unique: true

    create_table :oauth_applications do |t|
      t.string :name, null: false
      t.string :uid, null: false
      t.string :secret, null: false
      t.text :redirect_uri, null: false
      t.string :scopes, null: false, default: ''
      t.boolean :superapp, null: false, default: false
      t.string :website
      t.bigint :owner_id
      t.string :owner_type
      t.timestamps
    end
    add_index :oauth_applications, :uid, unique: true

    create_table :oauth_access_tokens do |t|
      t.string :token, null: false
      t.string :refresh_token
      t.integer :expires_in
      t.datetime :revoked_at
      t.datetime :created_at, null: false
      t.string :scopes
      t.references :application, foreign_key: { to_table: :oauth_applications, on_delete: :cascade }
      t.bigint :resource_owner_id
    end
    add_index :oauth_access_tokens, :token, unique: true

    create_table :standin_job_runs do |t|
      t.string :marker, null: false
      t.string :queue, null: false
      t.integer :pid
      t.timestamps
    end
  end
end
