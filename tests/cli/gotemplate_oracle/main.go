// Command gotemplate_oracle runs Go's text/template the way Docker's CLI (20.10) does, for
// dockyard's property tests. Stdin: one JSON request per line,
// {"template": "...", "data": <json>, "missingkey_error": bool}; stdout: one JSON answer per
// line, {"out": "...", "err": "..."} ("err" empty when it worked). Standard library only.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"text/template"
)

// Docker's templates.basicFunctions as of 20.10.
var dockerFuncs = template.FuncMap{
	"json": func(v interface{}) string {
		buf := &bytes.Buffer{}
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		enc.Encode(v)
		return strings.TrimSpace(buf.String())
	},
	"split":    strings.Split,
	"join":     strings.Join,
	"title":    strings.Title,
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"pad":      pad,
	"truncate": truncate,
}

func pad(source string, prefix, suffix int) string {
	if source == "" {
		return source
	}
	return strings.Repeat(" ", prefix) + source + strings.Repeat(" ", suffix)
}

func truncate(source string, length int) string {
	if len(source) < length {
		return source
	}
	return source[:length]
}

type request struct {
	Template       string          `json:"template"`
	Data           json.RawMessage `json:"data"`
	MissingKeyError bool           `json:"missingkey_error"`
}

type answer struct {
	Out string `json:"out"`
	Err string `json:"err"`
}

// convert maps decoded JSON onto the Go values dockyard models: whole numbers are int,
// others float64, and arrays of strings are []string (as Docker's typed structs have them).
func convert(v interface{}) interface{} {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return int(i)
		}
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case []interface{}:
		strs := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				strs = nil
				break
			}
			strs = append(strs, s)
		}
		if strs != nil {
			return strs
		}
		for i, e := range x {
			x[i] = convert(e)
		}
		return x
	case map[string]interface{}:
		for k, e := range x {
			x[k] = convert(e)
		}
		return x
	}
	return v
}

func run(req request) (out string, errText string) {
	defer func() {
		if r := recover(); r != nil {
			errText = "panic"
		}
	}()
	dec := json.NewDecoder(bytes.NewReader(req.Data))
	dec.UseNumber()
	var data interface{}
	if err := dec.Decode(&data); err != nil {
		return "", "bad data: " + err.Error()
	}
	tmpl, err := template.New("").Funcs(dockerFuncs).Parse(req.Template)
	if err != nil {
		return "", err.Error()
	}
	if req.MissingKeyError {
		tmpl = tmpl.Option("missingkey=error")
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, convert(data)); err != nil {
		return "", err.Error()
	}
	return buf.String(), ""
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	for in.Scan() {
		var req request
		var a answer
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			a.Err = "bad request: " + err.Error()
		} else {
			a.Out, a.Err = run(req)
		}
		enc.Encode(a)
		out.Flush()
	}
}
