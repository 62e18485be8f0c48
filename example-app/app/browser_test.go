package app_test

import (
	"context"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantkit/tenant/example-app/app"
)

// chromium finds a Chromium binary. Without one the browser test cannot run: locally
// that skips it, in CI (CI=true) it fails, since CI installs Chromium.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI must run the browser test: install Chromium (apt-get install chromium)")
	}
	t.Skip("Chromium is not installed (apt-get install chromium); the browser test runs where it is")
	return ""
}

// artifacts is the git-ignored folder for screenshots, at the repository root.
func artifacts(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", ".artifacts")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// A person opens the tenant's page, adds a document through the form, sees it among
// the recent changes, with a change made elsewhere appearing by itself, switches to
// German, and sees what they should.
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	f := newFixture(t, app.Config{})
	watching, stopWatching := context.WithCancel(context.Background())
	defer stopWatching()
	require.NoError(t, f.app.Watch(watching))
	tn := f.tenant(t)
	f.do(bySubdomain, tn, "POST", "/documents", `{"title": {"en": "Existing report", "de": "Vorhandener Bericht"}}`)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(f.h)
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // root in CI
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(900, 700),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browser, cancel := chromedp.NewContext(actx)
	defer cancel()

	// The first call starts the browser and must not carry a timeout; later calls do.
	page := "http://" + tn + ".localhost:" + port + "/" // Chromium resolves *.localhost to loopback
	require.NoError(t, chromedp.Do(browser, chromedp.Navigate(page)))
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(browser, 20*time.Second)
		defer cancel()
		require.NoError(t, chromedp.Do(ctx, steps...))
	}
	get := func(a chromedp.Action[string]) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(browser, 20*time.Second)
		defer cancel()
		v, err := chromedp.Run(ctx, a)
		require.NoError(t, err)
		return v
	}

	assert.Equal(t, tn, get(chromedp.Text("h1")))
	assert.Contains(t, get(chromedp.Text("#documents")), "Existing report")

	do(
		chromedp.SendKeys(`input[name="title_en"]`, "Added in the browser"),
		chromedp.SendKeys(`input[name="title_de"]`, "Im Browser hinzugefügt"),
		chromedp.Click(`button[type="submit"]`),
		chromedp.WaitVisible(`//li[contains(., "Added in the browser")]`),
	)
	list := get(chromedp.Text("#documents"))
	assert.Contains(t, list, "Existing report")
	assert.Contains(t, list, "Added in the browser")
	assert.Equal(t, 2, f.count(t, tn), "stored once")
	// The recent changes follow, after the commit, without a reload.
	do(chromedp.WaitVisible(`//ul[@id="changes"]/li[contains(., "insert documents 2")]`))
	_, err = f.pool.Exec(context.Background(), `UPDATE "`+tn+`".counter SET value = 7`)
	require.NoError(t, err)
	do(chromedp.WaitVisible(`//ul[@id="changes"]/li[1][contains(., "update counter 1")]`))

	do(chromedp.Click(`a[hreflang="de"]`), chromedp.WaitVisible(`//h2[text()="Dokumente"]`))
	list = get(chromedp.Text("#documents"))
	assert.Contains(t, list, "Vorhandener Bericht")
	assert.Contains(t, list, "Im Browser hinzugefügt")
	assert.NotContains(t, list, "Added in the browser")
	ctx, cancelShot := context.WithTimeout(browser, 20*time.Second)
	lang, err := chromedp.Run(ctx, chromedp.AttributeValue("html", "lang"))
	require.NoError(t, err)
	assert.Equal(t, "de", lang.Value)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 gives PNG
	cancelShot()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(artifacts(t), "browser-de.png"), shot, 0o644))

	// The choice is remembered (cookie): the plain page stays German.
	do(chromedp.Navigate(page))
	assert.Equal(t, "Dokumente", get(chromedp.Text("h2")))

	// The path style reaches the same tenant; the form posts within the prefix.
	do(chromedp.Navigate("http://localhost:" + port + "/t/" + tn + "/?locale=en"))
	assert.Contains(t, get(chromedp.Text("#documents")), "Added in the browser")
	do(
		chromedp.SendKeys(`input[name="title_en"]`, "Via the path"),
		chromedp.Click(`button[type="submit"]`),
		chromedp.WaitVisible(`//li[contains(., "Via the path")]`),
	)
	assert.True(t, strings.HasPrefix(get(chromedp.Title()), tn))
	assert.Equal(t, 3, f.count(t, tn))

	// An unknown tenant gets the plain 404.
	do(chromedp.Navigate("http://nosuch.localhost:" + port + "/"))
	assert.Equal(t, "unknown tenant", strings.TrimSpace(get(chromedp.Text("body"))))
}
