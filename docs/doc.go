// Package docs holds no code: it is the repository's documentation (the
// architecture, the API contract, the feature guides, benchmarks). Its tests
// keep the documentation standing alone and true: no link leads outside the
// repository or to a file that is not there, the design notes' package tables
// list every package, and API.md lists exactly the routes the managers serve.
package docs
