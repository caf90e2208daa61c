# frozen_string_literal: true

# Stand-in migration shipped with v4.4.0.
class AddAttributionDomainsToAccounts < ActiveRecord::Migration[6.1]
  def change
    add_column :accounts, :attribution_domains, :string, array: true, default: []
  end
end
