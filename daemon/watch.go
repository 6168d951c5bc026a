package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// fingerprint summarises what the configuration path holds (names, sizes,
// modification times) so a poll can tell it changed without a file-watching
// dependency. A missing path has its own fingerprint, so deleting and
// restoring the configuration both count as changes.
func fingerprint(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "missing"
	}
	if !fi.IsDir() {
		return stamp(fi)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return "unreadable"
	}
	var parts []string
	for _, e := range entries {
		name := e.Name()
		ext := strings.ToLower(filepath.Ext(name))
		if ext != ".yaml" && ext != ".yml" {
			continue
		}
		fi, err := os.Stat(filepath.Join(path, name))
		if err != nil {
			continue
		}
		parts = append(parts, name+"="+stamp(fi))
	}
	sort.Strings(parts)
	return strings.Join(parts, ";")
}

func stamp(fi os.FileInfo) string {
	return fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano())
}
