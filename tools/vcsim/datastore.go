package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// relocateDatastore moves the model's datastore to dir (when given) and returns
// the directory that backs it. The model always creates its datastores in a
// temp dir; vcsim has no option for that, so we copy the few files the default
// inventory created there and point the Datastore object at dir.
func relocateDatastore(model *simulator.Model, name, dir string) (string, error) {
	var ds *simulator.Datastore
	for _, e := range model.Map().All("Datastore") {
		if d, ok := e.(*simulator.Datastore); ok && d.Name == name {
			ds = d
		}
	}
	if ds == nil {
		return "", fmt.Errorf("model has no datastore %q", name)
	}
	if dir == "" {
		return ds.Summary.Url, nil
	}

	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := copyTree(ds.Summary.Url, dir); err != nil {
		return "", fmt.Errorf("populate datastore dir: %w", err)
	}

	info := ds.Info.GetDatastoreInfo()
	info.Url = dir
	if local, ok := ds.Info.(*types.LocalDatastoreInfo); ok {
		local.Path = dir
	}
	ds.Summary.Url = dir
	return dir, nil
}

// datastoreDirs maps each datastore's name to its local directory (after relocateDatastore).
func datastoreDirs(model *simulator.Model) map[string]string {
	out := map[string]string{}
	for _, e := range model.Map().All("Datastore") {
		if d, ok := e.(*simulator.Datastore); ok {
			out[d.Name] = d.Summary.Url
		}
	}
	return out
}

// copyTree copies the regular files of src into dst (model VM files are tiny).
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// flatFiles remembers the capacity of each spec disk's -flat.vmdk (by path
// relative to the datastore dir) so the file always has exactly that size.
type flatFiles struct {
	dir string
	mu  sync.Mutex
	cap map[string]int64
}

func newFlatFiles(dir string) *flatFiles {
	return &flatFiles{dir: dir, cap: map[string]int64{}}
}

// set makes rel a sparse file of capacity bytes (truncate: no blocks written).
func (f *flatFiles) set(rel string, capacity int64) error {
	f.mu.Lock()
	f.cap[rel] = capacity
	f.mu.Unlock()
	return os.Truncate(filepath.Join(f.dir, rel), capacity)
}

// restoreSize re-extends rel to its disk capacity after an upload replaced it
// with a shorter file: a raw image shorter than the disk reads as zeros past
// its end, as it would on a real datastore.
func (f *flatFiles) restoreSize(rel string) {
	f.mu.Lock()
	capacity, ok := f.cap[rel]
	f.mu.Unlock()
	if !ok {
		return
	}
	p := filepath.Join(f.dir, rel)
	if st, err := os.Stat(p); err == nil && st.Size() < capacity {
		_ = os.Truncate(p, capacity)
	}
}

// newMux wraps the stock /folder/ handler for uploads. The stock PUT truncates
// the target to the uploaded length, which would shrink a disk's -flat.vmdk.
// "PUT /folder/" is more specific than the stock "/folder/" pattern, so both
// can be registered.
func newMux(svc *simulator.Service, flats *flatFiles) *http.ServeMux {
	mux := http.NewServeMux()
	upload := func(w http.ResponseWriter, r *http.Request) {
		rel := strings.TrimPrefix(r.URL.Path, "/folder/")
		ds := r.URL.Query().Get("dsName")
		svc.ServeDatastore(w, r)
		if ds == "" || ds == datastoreName {
			flats.restoreSize(filepath.Clean(rel))
		}
	}
	mux.HandleFunc("PUT /folder/", upload)
	mux.HandleFunc("POST /folder/", upload)
	return mux
}
