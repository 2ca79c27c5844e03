package state

import (
	"time"

	"github.com/hashicorp/go-memdb"
)

// Token is a login session. Only the SHA-256 of the bearer token is kept, so
// a leaked snapshot does not hand out sessions.
type Token struct {
	Hash      string    `json:"hash"`
	User      string    `json:"user"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Meta
}

func (k *Token) id() string { return k.Hash }

const tableTokens = "tokens"

func tokensTable() Table {
	return Table{Name: tableTokens, ID: 6, New: func() any { return new(Token) },
		schema: &memdb.TableSchema{Indexes: map[string]*memdb.IndexSchema{
			"id":   stringIndex("id", "Hash", true, false),
			"user": stringIndex("user", "User", false, false),
		}}}
}

// Token returns the token with the hash or nil.
func (t *Txn) Token(hash string) (*Token, error) { return first[Token](t, tableTokens, "id", hash) }

// TokensOfUser lists the login tokens of a user.
func (t *Txn) TokensOfUser(email string) ([]*Token, error) {
	return list[Token](t, tableTokens, "user", email)
}

// Tokens lists every token.
func (t *Txn) Tokens() ([]*Token, error) { return list[Token](t, tableTokens, "id") }

// PutToken inserts a token at the Raft index.
func (t *Txn) PutToken(index uint64, k *Token) error { return t.put(tableTokens, index, k) }

// DeleteToken removes a token.
func (t *Txn) DeleteToken(k *Token) error { return t.remove(tableTokens, k) }
