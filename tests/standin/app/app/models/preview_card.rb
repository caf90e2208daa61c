# frozen_string_literal: true

class PreviewCard < ApplicationRecord
end
