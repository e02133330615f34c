package frontend

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
)

//go:embed page.tmpl
var pageSource string

var pageTmpl = template.Must(template.New("page").Parse(pageSource))

// page is what the frontend shows: the forms, and the outcome of the last
// question or burst.
type page struct {
	Question   string
	Answer     string
	Problem    *problem
	Load       *loadResult
	BackendURL string // for the link to the backend's pool page
	MaxLoad    int
}

func (s *Server) render(w http.ResponseWriter, status int, p page) {
	p.BackendURL, p.MaxLoad = s.cfg.BackendURL, s.cfg.MaxLoad
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, p); err != nil {
		s.log.Error("rendering the page", "err", err)
		http.Error(w, "rendering the page failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'")
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
