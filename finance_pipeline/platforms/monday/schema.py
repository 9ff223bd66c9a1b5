"""The part of monday.com's GraphQL schema (API 2026-10) the emulator serves, as SDL.

Names, argument names and types follow monday's published schema (`api-types.d.ts` of
mondaycom/monday-graphql-api); `ColumnValue` is one concrete type here (monday's is an interface
with a type per column kind; `id`, `type`, `text` and `value` are what clients read).
graphql-core parses and validates every request against it, so a misspelled field, a missing
argument or a wrongly typed variable is refused as monday refuses it.
"""
from __future__ import annotations

SDL = """
scalar JSON
scalar CompareValue
scalar Date
scalar ISO8601DateTime

enum BoardKind { public private share }
enum State { active all archived deleted }
enum ColumnType { status numbers date text long_text email people dropdown checkbox name }
enum ItemsQueryOperator { and or }
enum ItemsQueryRuleOperator {
  any_of not_any_of is_empty is_not_empty greater_than greater_than_or_equals lower_than
  lower_than_or_equal between contains_text not_contains_text contains_terms starts_with ends_with
}

input ItemsQueryRule {
  column_id: ID!
  compare_value: CompareValue!
  compare_attribute: String
  operator: ItemsQueryRuleOperator = any_of
}
input ItemsQuery { rules: [ItemsQueryRule!], operator: ItemsQueryOperator = and, ids: [ID!] }
input ItemsPageByColumnValuesQuery { column_id: String!, column_values: [String]! }

type Complexity { before: Int!, after: Int!, query: Int!, reset_in_x_seconds: Int! }
type Version { kind: String!, value: String!, display_name: String! }

type Column {
  id: ID!
  title: String!
  type: ColumnType!
  settings_str: String!
  archived: Boolean!
  description: String
}

type ColumnValue {
  id: ID!
  type: ColumnType!
  text: String
  value: JSON
  column: Column!
}

type Item {
  id: ID!
  name: String!
  state: State
  created_at: Date
  updated_at: Date
  board: Board
  column_values(ids: [String!], types: [ColumnType!]): [ColumnValue!]!
}

type ItemsResponse { cursor: String, items: [Item!]! }

type Board {
  id: ID!
  name: String!
  board_kind: BoardKind!
  state: State!
  description: String
  items_count: Int
  columns(ids: [String], types: [ColumnType!]): [Column]
  items_page(limit: Int! = 25, cursor: String, query_params: ItemsQuery): ItemsResponse!
}

type Query {
  boards(ids: [ID!], limit: Int, page: Int, state: State = active, board_kind: BoardKind): [Board]
  items(ids: [ID!], limit: Int, page: Int): [Item]
  items_page_by_column_values(board_id: ID!, columns: [ItemsPageByColumnValuesQuery!], cursor: String,
                              limit: Int! = 25): ItemsResponse!
  next_items_page(cursor: String!, limit: Int! = 25): ItemsResponse!
  complexity: Complexity
  version: Version!
}

type Mutation {
  complexity: Complexity
  create_board(board_name: String!, board_kind: BoardKind!, description: String, workspace_id: ID,
               empty: Boolean): Board
  create_column(board_id: ID!, id: String, title: String!, column_type: ColumnType!, description: String,
                defaults: JSON, after_column_id: ID): Column
  create_item(board_id: ID!, item_name: String!, column_values: JSON, group_id: String,
              create_labels_if_missing: Boolean): Item
  change_column_value(board_id: ID!, item_id: ID, column_id: String!, value: JSON!,
                      create_labels_if_missing: Boolean): Item
  change_simple_column_value(board_id: ID!, item_id: ID, column_id: String!, value: String,
                             create_labels_if_missing: Boolean): Item
  change_multiple_column_values(board_id: ID!, item_id: ID, column_values: JSON!,
                                create_labels_if_missing: Boolean): Item
  delete_item(item_id: ID): Item
}
"""
