# frozen_string_literal: true

# Favourites (stand-in): who favourited which status.
class Favourite < ApplicationRecord
  belongs_to :account
  belongs_to :status, inverse_of: :favourites
end
