package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/pushd/push/internal/pushdtest"
	"github.com/pushd/push/internal/testwait"
)

// chromiumEnv names another Chromium or Chrome binary than /usr/bin/chromium.
const chromiumEnv = "PUSHD_CHROMIUM"

// chromium returns the browser binary, failing the test when there is none:
// these tests are the only check that pushd.js and the web app work, so
// they never skip.
func chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv(chromiumEnv)
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the browser tests need Chromium at %s (%v): install it (apt-get install -y chromium; .ci/run does) or set %s to a Chromium or Chrome binary", path, err, chromiumEnv)
	}
	return path
}

// browser is one headless Chromium for a test, with a fresh profile; it is
// stopped when the test ends.
type browser struct {
	t     *testing.T
	ctx   context.Context
	phone bool // tabs emulate a phone's screen
}

// newBrowser starts Chromium with a window of w×h pixels.
func newBrowser(t *testing.T, w, h int) *browser {
	t.Helper()
	return startBrowser(t, w, h, false)
}

// newPhone starts Chromium whose tabs emulate a phone, 390×844 CSS pixels.
func newPhone(t *testing.T) *browser {
	t.Helper()
	return startBrowser(t, 390, 844, true)
}

func startBrowser(t *testing.T, w, h int, phone bool) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(w, h),
		// This machine refuses outside connections: keep Chromium from
		// trying any.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The browser lives as long as the context of its first run: no timeout
	// on that one.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx, phone: phone}
}

// page is one tab.
type page struct {
	t    *testing.T
	name string
	ctx  context.Context
}

// open opens url in a new tab for test t, closed when t ends; the page's
// console errors and uncaught exceptions go to t's log.
func (b *browser) open(t *testing.T, name, url string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithListener(func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, strings.TrimSpace(string(a.Value)+" "+a.Description))
				}
				t.Logf("%s console %s: %s", name, ev.Type, strings.Join(parts, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			desc := d.Text
			if d.Exception != nil {
				desc += " " + d.Exception.Description
			}
			t.Logf("%s exception at %s:%d: %s", name, d.URL, d.LineNumber+1, desc)
		}
	}))
	t.Cleanup(cancel)
	// The tab lives as long as the context of its first run.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: open a tab: %v", name, err)
	}
	p := &page{t: t, name: name, ctx: ctx}
	if b.phone {
		p.run("emulate a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	}
	p.run("open "+url, chromedp.Navigate(url))
	return p
}

// run runs actions on the page, bounded by pushdtest.Timeout.
func (p *page) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, pushdtest.Timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
}

// eval evaluates a JavaScript expression on the page (awaiting a promise)
// and decodes its value into out (nil: discard).
func (p *page) eval(expr string, out any) error {
	ctx, cancel := context.WithTimeout(p.ctx, pushdtest.Timeout)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// must is eval failing the test on an error.
func (p *page) must(expr string, out any) {
	p.t.Helper()
	if err := p.eval(expr, out); err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, expr, err)
	}
}

// expect evaluates expr, a JavaScript expression that gives "" when what
// holds and why not otherwise, once, failing the test unless it holds.
func (p *page) expect(what, expr string) {
	p.t.Helper()
	var why string
	p.must(expr, &why)
	if why != "" {
		p.t.Fatalf("%s: %s: %s", p.name, what, why)
	}
}

// waitFor waits until expr, a JavaScript expression, gives "" (so),
// failing the test with what it last gave otherwise (why not yet).
func (p *page) waitFor(what, expr string) {
	p.t.Helper()
	testwait.Until(p.t, pushdtest.Timeout, 20*time.Millisecond, func() error {
		var why string
		if err := p.eval(expr, &why); err != nil {
			return fmt.Errorf("%s: %s: %w", p.name, what, err)
		}
		if why != "" {
			return fmt.Errorf("%s: %s: %s", p.name, what, why)
		}
		return nil
	})
}

// screenshot writes a PNG of the whole page to path.
func (p *page) screenshot(path string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, pushdtest.Timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("%s: screenshot: %v", p.name, err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}
