// oci-image writes a single-layer container image as an OCI image-layout archive, without a
// container engine: `make image` (scripts/image.sh) runs it on the root filesystem that
// `scripts/image.sh rootfs` prepared. It is go-containerregistry (the library crane is built
// on), pinned in this directory's go.mod.
//
// The result is reproducible: every file in the layer is owned by 0:0 with the mode it has in
// the root filesystem and the mtime --created; the image's created time is --created too; the
// layer is gzip'ed by Go's compress/gzip (deterministic for one Go version); the archive's own
// entries are sorted and carry the same fixed time. Same inputs, same bytes, same digest.
//
//	oci-image --rootfs DIR --out FILE --name REPO:TAG --created UNIX_SECONDS \
//	  --entrypoint /usr/local/bin/partnerkit --user 65532:65532 --env PATH=/usr/local/bin \
//	  --label org.opencontainers.image.title=partnerkit ...
//
// index.json names the image twice, as the tools that read OCI archives expect:
// org.opencontainers.image.ref.name = TAG (skopeo's oci-archive:FILE:TAG, the OCI spec) and
// io.containerd.image.name = the full name, e.g. docker.io/partnerkit/partnerkit:0.1.0 (what
// containerd's import — kind, k3d, `ctr images import` — names the image by).
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	rootfs := flag.String("rootfs", "", "the root filesystem to pack as the image's one layer")
	out := flag.String("out", "", "the OCI image-layout archive to write (.oci.tar)")
	name := flag.String("name", "", "REPOSITORY:TAG, e.g. partnerkit/partnerkit:0.1.0")
	created := flag.Int64("created", 0, "creation time, Unix seconds (SOURCE_DATE_EPOCH)")
	entrypoint := flag.String("entrypoint", "", "the image's entrypoint (one path)")
	user := flag.String("user", "", "the image's user, UID:GID")
	arch := flag.String("arch", "amd64", "the image's architecture")
	createdBy := flag.String("created-by", "", "the history entry's created_by")
	var env, labels list
	flag.Var(&env, "env", "KEY=VALUE (repeatable)")
	flag.Var(&labels, "label", "KEY=VALUE (repeatable)")
	flag.Parse()
	if *rootfs == "" || *out == "" || *name == "" || *entrypoint == "" || *user == "" {
		fail("usage: oci-image --rootfs DIR --out FILE --name REPO:TAG --entrypoint PATH --user UID:GID [--created SECONDS] [--env K=V]... [--label K=V]...")
	}
	i := strings.LastIndex(*name, ":")
	if i < 0 || strings.Contains((*name)[i:], "/") {
		fail("--name %q: want REPOSITORY:TAG", *name)
	}
	repo, tag := (*name)[:i], (*name)[i+1:]
	when := time.Unix(*created, 0).UTC()

	layerTar, err := packRootfs(*rootfs, when)
	check(err, "packing %s", *rootfs)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.BestCompression))
	check(err, "making the layer")

	labelMap := map[string]string{}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			fail("--label %q: want KEY=VALUE", l)
		}
		labelMap[k] = v
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.ConfigFile(base, &v1.ConfigFile{
		Architecture: *arch,
		OS:           "linux",
		Created:      v1.Time{Time: when},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint: []string{*entrypoint},
			User:       *user,
			Env:        env,
			WorkingDir: "/",
			Labels:     labelMap,
		},
	})
	check(err, "setting the config")
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: when}, CreatedBy: *createdBy},
	})
	check(err, "adding the layer")

	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), mutate.IndexAddendum{
		Add: img,
		Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: *arch},
			Annotations: map[string]string{
				"org.opencontainers.image.ref.name": tag,
				"io.containerd.image.name":          fullName(repo) + ":" + tag,
			},
		},
	})
	dir, err := os.MkdirTemp(filepath.Dir(*out), ".oci-layout-")
	check(err, "making a temporary directory")
	defer os.RemoveAll(dir)
	_, err = layout.Write(dir, idx)
	check(err, "writing the image layout")
	check(tarDir(dir, *out, when), "writing %s", *out)

	digest, err := img.Digest()
	check(err, "digest")
	size, err := layer.Size()
	check(err, "layer size")
	summary, _ := json.Marshal(map[string]any{
		"archive": *out, "name": repo + ":" + tag, "manifest": digest.String(),
		"layer_bytes_gzip": size, "layer_bytes": len(layerTar),
	})
	fmt.Println(string(summary))
}

// fullName returns a repository as containerd names it: one with a registry host as it is,
// one without on Docker Hub: docker.io/<name>, docker.io/library/<name> for a single element.
func fullName(repo string) string {
	first, _, found := strings.Cut(repo, "/")
	switch {
	case found && (strings.ContainsAny(first, ".:") || first == "localhost"):
		return repo
	case found:
		return "docker.io/" + repo
	default:
		return "docker.io/library/" + repo
	}
}

// packRootfs returns an uncompressed tar of dir: entries sorted by path, owned by 0:0, with
// the permission bits (and sticky bit) found on disk and mtime `when`. Only directories,
// regular files and symlinks are allowed.
func packRootfs(dir string, when time.Time) ([]byte, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		mode := int64(fi.Mode().Perm())
		if fi.Mode()&fs.ModeSticky != 0 {
			mode |= 0o1000
		}
		h := &tar.Header{Name: rel, Mode: mode, ModTime: when, Format: tar.FormatPAX}
		switch {
		case fi.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, rel+"/"
		case fi.Mode().IsRegular():
			h.Typeflag, h.Size = tar.TypeReg, fi.Size()
		case fi.Mode()&fs.ModeSymlink != 0:
			h.Typeflag = tar.TypeSymlink
			if h.Linkname, err = os.Readlink(p); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%s: only directories, regular files and symlinks belong in the image", rel)
		}
		if fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
			return nil, fmt.Errorf("%s: setuid/setgid files do not belong in the image", rel)
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// tarDir writes the image layout in dir as a tar archive at out (via out.tmp, renamed at the
// end): entries sorted, 0:0, 0755/0644, mtime `when`.
func tarDir(dir, out string, when time.Time) error {
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(f)
	var paths []string
	if err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != dir {
			paths = append(paths, p)
		}
		return err
	}); err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, ModTime: when, Typeflag: tar.TypeReg, Size: fi.Size(), Format: tar.FormatPAX}
		if fi.IsDir() {
			h.Name, h.Mode, h.Typeflag, h.Size = h.Name+"/", 0o755, tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !fi.IsDir() {
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, src)
			src.Close()
			if err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

func check(err error, format string, args ...any) {
	if err != nil {
		fail("%s: %v", fmt.Sprintf(format, args...), err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "oci-image: "+format+"\n", args...)
	os.Exit(1)
}
