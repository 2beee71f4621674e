package dataset

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// listingRef is testdata/listing_ref.json, made by testdata/make_listing_ref.py.
type listingRef struct {
	Tree             []string      `json:"tree"`
	Torchvision      string        `json:"torchvision"`
	CustomExtensions []string      `json:"custom_extensions"`
	Default          folderListing `json:"default"`
	All              folderListing `json:"all"`
	Custom           folderListing `json:"custom"`
}

type folderListing struct {
	Classes    []string             `json:"classes"`
	ClassToIdx map[string]int       `json:"class_to_idx"`
	Samples    [][2]json.RawMessage `json:"samples"`
}

// TestListingMatchesImageFolder: the tree the script lists, built here, gives torchvision's
// classes, ids, order and class indices by default (ImageFolder: IMG_EXTENSIONS), with
// AllFiles (ImageFolder with is_valid_file accepting every file) and with a custom list
// (DatasetFolder with those extensions), the last given as precompute --extensions takes it.
func TestListingMatchesImageFolder(t *testing.T) {
	js, err := os.ReadFile(filepath.Join("testdata", "listing_ref.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref listingRef
	if err := json.Unmarshal(js, &ref); err != nil {
		t.Fatal(err)
	}
	if ref.Torchvision == "emulated" {
		t.Log("listing_ref.json was made by make_listing_ref.py --emulate (its copy of torchvision's rule), not by torchvision")
	} else {
		t.Logf("listing_ref.json made with torchvision %s", ref.Torchvision)
	}
	root := t.TempDir()
	touch(t, root, ref.Tree...)
	custom, err := ParseExtensions("JPG, png,.gif ,.TAR.GZ,jpg")
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := CanonicalExtensions(ref.CustomExtensions); !slices.Equal(custom, want) {
		t.Fatalf("parsed custom extensions %q, the script's %q", custom, want)
	}
	for _, tc := range []struct {
		name string
		exts []string
		want folderListing
	}{
		{"default", nil, ref.Default},
		{"all", []string{AllFiles}, ref.All},
		{"custom", custom, ref.Custom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := OpenWith(root, Options{Extensions: tc.exts})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(src.ClassNames(), tc.want.Classes) {
				t.Fatalf("classes %q, torchvision %q", src.ClassNames(), tc.want.Classes)
			}
			for i, c := range tc.want.Classes {
				if tc.want.ClassToIdx[c] != i {
					t.Fatalf("torchvision's class_to_idx %v does not follow its classes %q", tc.want.ClassToIdx, tc.want.Classes)
				}
			}
			var want []Item
			for i, s := range tc.want.Samples {
				var it Item
				if err := json.Unmarshal(s[0], &it.ID); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(s[1], &it.Label); err != nil {
					t.Fatal(err)
				}
				it.Index = i
				want = append(want, it)
			}
			var got []Item
			for i := range src.Len() {
				got = append(got, src.Item(i))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("listing\n%v\ntorchvision %s\n%v", got, ref.Torchvision, want)
			}
		})
	}
	// The default leaves the GIFs out, which is what keeps later indices where ImageFolder
	// has them; the other two list them.
	if slices.ContainsFunc(ref.Default.Samples, func(s [2]json.RawMessage) bool { return string(s[0]) == `"a/anim.gif"` }) {
		t.Error("the reference's default listing has a GIF")
	}
	for _, l := range []folderListing{ref.All, ref.Custom} {
		if !slices.ContainsFunc(l.Samples, func(s [2]json.RawMessage) bool { return string(s[0]) == `"a/anim.gif"` }) {
			t.Error("a widened reference listing lacks a/anim.gif")
		}
	}
	if !slices.Equal(slices.Sorted(maps.Keys(ref.Default.ClassToIdx)), slices.Sorted(slices.Values(ref.Default.Classes))) {
		t.Errorf("class_to_idx %v, classes %q", ref.Default.ClassToIdx, ref.Default.Classes)
	}
}
