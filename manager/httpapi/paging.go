package httpapi

import (
	"github.com/berth-cluster/berth/shared/api"
)

// pageOf cuts a list already sorted by key (ascending: the id, or
// state.NewestKey for newest first) into the page that ?cursor= and
// ?limit= ask for. Tables too small to need an index-backed cursor
// (domains, groups, policies, a user's folders) page through it.
func pageOf[T any](c *Call, items []T, id func(T) string) (api.List[T], error) {
	q := c.R.URL.Query()
	limit, err := listLimit(q.Get("limit"))
	if err != nil {
		return api.List[T]{}, err
	}
	cursor := q.Get("cursor")
	out := api.List[T]{Items: make([]T, 0, min(limit, len(items)))}
	for _, it := range items {
		if id(it) < cursor {
			continue
		}
		if len(out.Items) == limit {
			out.NextCursor = id(it)
			break
		}
		out.Items = append(out.Items, it)
	}
	return out, nil
}
