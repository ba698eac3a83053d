// Command oidc-provider is partnerkit's OpenID Connect provider for tests: the real
// github.com/oauth2-proxy/mockoidc server (discovery, JWKS, authorization code flow with PKCE
// and nonce, RS256 ID tokens) on a loopback port, with a small control API for the tests.
//
//	oidc-provider --listen 127.0.0.1:0 --client-id ID --client-secret SECRET --ready-file PATH
//
// Writes PATH (JSON: issuer, clientId, clientSecret) once it is listening; serves until
// SIGINT/SIGTERM. Control API (loopback only, like the provider itself):
//
//	POST /test/user   {"email": "...", "groups": ["..."], "emailVerified": true}
//	                  the next sign-in (authorization request) is this user
//	POST /test/fault  {"aud": "...", "nonce": "...", "expiresIn": -60, "iss": "...", "foreignKey": true}
//	                  the next token response's ID token is re-signed with these claims changed
//	                  (foreignKey: signed by a key the JWKS does not publish)
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

type fault struct {
	Aud        *string `json:"aud"`
	Nonce      *string `json:"nonce"`
	Iss        *string `json:"iss"`
	ExpiresIn  *int64  `json:"expiresIn"`
	ForeignKey bool    `json:"foreignKey"`
}

type userReq struct {
	Email         string   `json:"email"`
	Groups        []string `json:"groups"`
	EmailVerified *bool    `json:"emailVerified"`
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	clientID := flag.String("client-id", "partnerkit", "the client ID")
	clientSecret := flag.String("client-secret", "", "the client secret (random when empty)")
	ready := flag.String("ready-file", "", "written (JSON) once listening")
	flag.Parse()

	m, err := mockoidc.NewServer(nil)
	if err != nil {
		log.Fatal(err)
	}
	m.ClientID = *clientID
	if *clientSecret != "" {
		m.ClientSecret = *clientSecret
	}
	foreign, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}

	var mu sync.Mutex
	var next *fault
	err = m.AddMiddleware(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			f := next
			if r.URL.Path == mockoidc.TokenEndpoint {
				next = nil
			}
			mu.Unlock()
			if r.URL.Path != mockoidc.TokenEndpoint || f == nil {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			var tr map[string]any
			if rec.Code == http.StatusOK && json.Unmarshal(body, &tr) == nil {
				if raw, ok := tr["id_token"].(string); ok {
					if t, err := resign(m, raw, f, foreign); err == nil {
						tr["id_token"] = t
						body, _ = json.Marshal(tr)
					} else {
						log.Printf("fault: %v", err)
					}
				}
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
		})
	})
	if err != nil {
		log.Fatal(err)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		log.Fatal(err)
	}
	// The control API on a second listener, so the provider's own mux stays mockoidc's.
	ctl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /test/user", func(w http.ResponseWriter, r *http.Request) {
		var u userReq
		if err := json.NewDecoder(r.Body).Decode(&u); err != nil || u.Email == "" {
			http.Error(w, "want {email, groups}", http.StatusBadRequest)
			return
		}
		verified := u.EmailVerified == nil || *u.EmailVerified
		m.QueueUser(&mockoidc.MockUser{
			Subject: "sub-" + u.Email, Email: u.Email, EmailVerified: verified,
			PreferredUsername: u.Email, Groups: u.Groups,
		})
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /test/fault", func(w http.ResponseWriter, r *http.Request) {
		var f fault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		next = &f
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	go func() { _ = http.Serve(ctl, mux) }()

	if *ready != "" {
		info, _ := json.Marshal(map[string]string{
			"issuer": m.Issuer(), "clientId": m.ClientID, "clientSecret": m.ClientSecret,
			"control": "http://" + ctl.Addr().String(),
		})
		tmp := *ready + ".tmp"
		if err := os.WriteFile(tmp, info, 0o600); err != nil {
			log.Fatal(err)
		}
		if err := os.Rename(tmp, *ready); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Fprintf(os.Stderr, "oidc-provider: issuer %s\n", m.Issuer())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	_ = m.Shutdown()
}

// resign returns the ID token raw with the fault's claims changed, signed by the provider's
// key (or by a foreign one under the provider's key ID).
func resign(m *mockoidc.MockOIDC, raw string, f *fault, foreign *rsa.PrivateKey) (string, error) {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(raw, claims); err != nil {
		return "", err
	}
	if f.Aud != nil {
		claims["aud"] = []string{*f.Aud}
	}
	if f.Nonce != nil {
		claims["nonce"] = *f.Nonce
	}
	if f.Iss != nil {
		claims["iss"] = *f.Iss
	}
	if f.ExpiresIn != nil {
		now := m.Now()
		claims["exp"] = now.Add(time.Duration(*f.ExpiresIn) * time.Second).Unix()
		claims["iat"] = now.Add(-time.Hour).Unix()
		claims["nbf"] = now.Add(-time.Hour).Unix()
	}
	if !f.ForeignKey {
		return m.Keypair.SignJWT(claims)
	}
	kid, err := m.Keypair.KeyID()
	if err != nil {
		return "", err
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = kid
	return t.SignedString(foreign)
}

