//! CEL expressions as kube-apiserver compiles them: parse errors rendered the way cel-go
//! renders its issues, and, for the admission CEL of ValidatingAdmissionPolicies
//! (`k8s.io/apiserver/pkg/admission/plugin/cel/compile.go`), the part of cel-go's type check
//! that can be mirrored faithfully without its type system:
//!
//! - references to undeclared identifiers (`object`, `oldObject`, `request`,
//!   `namespaceObject` always; `authorizer`, `params` and `variables` only where upstream
//!   declares them; comprehension variables in their scope);
//! - fields the typed variables lack (`request`, `namespaceObject`, `variables`):
//!   `undefined field 'x'`;
//! - the expression's result type where it is certain (`must evaluate to bool but got dyn`).
//!
//! What needs cel-go's function declarations (unknown functions, overload resolution,
//! argument types, homogeneous literals, regex and duration literals) is not checked: an
//! expression passes unless a check here is sure it fails.

use kube_cel::cel;

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue, operators};
use cel::parser::{ParseErrors, Parser};

/// Parse as the Kubernetes CEL environments do (optional syntax `a.?b`, `[?x]` enabled).
pub fn parse(source: &str) -> Result<IdedExpr, ParseErrors> {
    Parser::new().enable_optional_syntax(true).parse(source)
}

/// One issue of a compilation: 1-based line, 0-based column in characters.
struct Issue {
    line: usize,
    col: usize,
    msg: String,
}

/// Parse errors as cel-go's `Issues.String()` renders them (see [`render`]).
pub fn render_parse_errors(source: &str, errs: &ParseErrors) -> String {
    let issues = errs
        .errors
        .iter()
        .map(|e| Issue {
            line: e.pos.0.max(0) as usize,
            col: (e.pos.1 - 1).max(0) as usize,
            msg: e.msg.clone(),
        })
        .collect();
    render(source, issues)
}

/// cel-go's `Errors.ToDisplayString`: issues sorted by location, each
/// `ERROR: <input>:L:C: msg` followed by its source line and a caret under the column
/// (`\n | line\n | ....^`, tabs shown as spaces, wide characters as wide dots).
fn render(source: &str, mut issues: Vec<Issue>) -> String {
    issues.sort_by_key(|i| (i.line, i.col));
    let lines: Vec<&str> = source.split('\n').collect();
    issues
        .iter()
        .map(|i| {
            let mut s = format!("ERROR: <input>:{}:{}: {}", i.line, i.col + 1, i.msg);
            if let Some(snippet) = i
                .line
                .checked_sub(1)
                .and_then(|l| lines.get(l))
                .filter(|l| l.len() <= 16384)
            {
                let snippet = snippet.replace('\t', " ");
                s.push_str("\n | ");
                s.push_str(&snippet);
                s.push_str("\n | ");
                let mut chars = snippet.chars();
                for _ in 0..i.col {
                    match chars.next() {
                        Some(c) if c.len_utf8() > 1 => s.push('\u{ff0e}'),
                        Some(_) => s.push('.'),
                        None => break,
                    }
                }
                match chars.next() {
                    Some(c) if c.len_utf8() > 1 => s.push('\u{ff3e}'),
                    _ => s.push('^'),
                }
            }
            s
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/// What is known of an expression's type. `Unknown` is "not sure": never an error.
#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    Unknown,
    Dyn,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Null,
    List(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    Obj(Obj),
}

/// The object types upstream declares for `request` (`BuildRequestType`) and
/// `namespaceObject` (`BuildNamespaceType`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Obj {
    Request,
    Gvk,
    Gvr,
    UserInfo,
    Namespace,
    NsMetadata,
    NsSpec,
    NsStatus,
    NsCondition,
}

fn list(t: Ty) -> Ty {
    Ty::List(Box::new(t))
}

impl Obj {
    /// The type of a declared field; None when the type has no such field.
    fn field(self, name: &str) -> Option<Ty> {
        use Obj::*;
        Some(match (self, name) {
            (Request, "kind" | "requestKind") => Ty::Obj(Gvk),
            (Request, "resource" | "requestResource") => Ty::Obj(Gvr),
            (
                Request,
                "subResource" | "requestSubResource" | "name" | "namespace" | "operation",
            ) => Ty::String,
            (Request, "userInfo") => Ty::Obj(UserInfo),
            (Request, "dryRun") => Ty::Bool,
            (Request, "options") => Ty::Dyn,
            (Gvk, "group" | "version" | "kind") | (Gvr, "group" | "version" | "resource") => {
                Ty::String
            }
            (UserInfo, "username" | "uid") => Ty::String,
            (UserInfo, "groups") => list(Ty::String),
            (UserInfo, "extra") => Ty::Map(Box::new(Ty::String), Box::new(list(Ty::String))),
            (Namespace, "metadata") => Ty::Obj(NsMetadata),
            (Namespace, "spec") => Ty::Obj(NsSpec),
            (Namespace, "status") => Ty::Obj(NsStatus),
            (NsSpec, "finalizers") => list(Ty::String),
            (NsStatus, "conditions") => list(Ty::Obj(NsCondition)),
            (NsStatus, "phase") => Ty::String,
            (NsCondition, "status" | "type" | "message" | "reason") => Ty::String,
            // google.protobuf.Timestamp: not rendered here.
            (NsCondition, "lastTransitionTime") => Ty::Unknown,
            (NsMetadata, "name" | "generateName" | "namespace" | "UID" | "resourceVersion") => {
                Ty::String
            }
            (NsMetadata, "labels" | "annotations") => {
                Ty::Map(Box::new(Ty::String), Box::new(Ty::String))
            }
            (NsMetadata, "creationTimestamp" | "deletionTimestamp") => Ty::Unknown,
            (NsMetadata, "deletionGracePeriodSeconds" | "generation") => Ty::Int,
            (NsMetadata, "finalizers") => list(Ty::String),
            _ => return None,
        })
    }
}

impl Ty {
    /// cel-go's name of the type (`int`, `list(string)`, `dyn`), when it is certain.
    fn name(&self) -> Option<String> {
        Some(match self {
            Ty::Unknown | Ty::Obj(_) => return None,
            Ty::Dyn => "dyn".into(),
            Ty::Bool => "bool".into(),
            Ty::Int => "int".into(),
            Ty::Uint => "uint".into(),
            Ty::Double => "double".into(),
            Ty::String => "string".into(),
            Ty::Bytes => "bytes".into(),
            Ty::Null => "null_type".into(),
            Ty::List(t) => format!("list({})", t.name()?),
            Ty::Map(k, v) => format!("map({}, {})", k.name()?, v.name()?),
        })
    }

    fn is_primitive(&self) -> bool {
        matches!(
            self,
            Ty::Bool | Ty::Int | Ty::Uint | Ty::Double | Ty::String | Ty::Bytes
        )
    }
}

// ---------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------

/// The variables an expression is compiled with (`OptionalVariableDeclarations` plus
/// composition): `object`, `oldObject`, `request` and `namespaceObject` are always declared.
pub struct Env<'a> {
    pub params: bool,
    pub authorizer: bool,
    /// `variables` and the names (with types) declared so far; None: `variables` undeclared.
    pub variables: Option<&'a [(String, Ty)]>,
}

/// The result types an expression must have (`ExpressionAccessor.ReturnTypes`).
#[derive(Clone, Copy, PartialEq)]
pub enum Want {
    Any,
    Bool,
    String,
    StringOrNull,
}

/// Compile `source` in `env`: the parsed expression and its type, or the error detail as
/// upstream words it (`compilation failed: ERROR: <input>:1:1: ...`,
/// `must evaluate to bool but got dyn`).
pub fn check(source: &str, env: &Env, want: Want) -> Result<(IdedExpr, Ty), String> {
    let expr = parse(source)
        .map_err(|e| format!("compilation failed: {}", render_parse_errors(source, &e)))?;
    let mut w = Walker {
        env,
        scope: Vec::new(),
        path: Vec::new(),
        found: Vec::new(),
    };
    let ty = w.walk(&expr, Role::Plain);
    // (cel-go reports at most 100 issues; this also bounds the re-parsing of `locate`.)
    let issues: Vec<Issue> = w
        .found
        .iter()
        .take(100)
        .filter_map(|f| {
            let off = locate(source, f)?;
            let before = &source[..off];
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let msg = if f.field {
                format!("undefined field '{}'", f.name)
            } else {
                format!("undeclared reference to '{}' (in container '')", f.name)
            };
            Some(Issue {
                line: before.matches('\n').count() + 1,
                col: before[line_start..].chars().count(),
                msg,
            })
        })
        .collect();
    if !issues.is_empty() {
        return Err(format!("compilation failed: {}", render(source, issues)));
    }
    let ok = match want {
        Want::Any => true,
        Want::Bool => matches!(ty, Ty::Bool),
        Want::String => matches!(ty, Ty::String),
        Want::StringOrNull => matches!(ty, Ty::String | Ty::Null),
    };
    if let (false, Some(got)) = (ok, ty.name()) {
        return Err(match want {
            Want::Bool => format!("must evaluate to bool but got {got}"),
            Want::String => format!("must evaluate to string but got {got}"),
            _ => format!("must evaluate to one of [string null_type] but got {got}"),
        });
    }
    Ok((expr, ty))
}

/// An undeclared identifier (`field`: false) or undefined field of a select (true), by the
/// path of its node in the tree ([`children`] indices).
struct Finding {
    path: Vec<usize>,
    name: String,
    field: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Plain,
    /// `x` of `x.y`: cel-go resolves qualified names (`google.protobuf.Timestamp`).
    SelectRoot,
    /// `x` of `x.f()`: cel-go resolves qualified function names (`strings.quote`).
    CallTarget,
}

/// Type names cel-go declares as identifiers.
const TYPE_IDENTS: &[&str] = &[
    "bool",
    "bytes",
    "double",
    "dyn",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "type",
    "uint",
    "optional_type",
];
/// First parts of qualified type names (`google.protobuf.Duration`, `net.IP`,
/// `kubernetes.Quantity`).
const TYPE_NAMESPACES: &[&str] = &["google", "kubernetes", "net"];
/// First parts of qualified function names the Kubernetes 1.36 environment declares
/// (`optional.of`, `strings.quote`, `sets.contains`, `lists.range`, `ip.isCanonical`,
/// `format.named`).
const FUNCTION_NAMESPACES: &[&str] = &["optional", "strings", "sets", "lists", "ip", "format"];

/// Number of variables a cel-go macro binds, for the macros the `cel` parser leaves as calls
/// (two-variable comprehensions, `transformList`, `optMap`, `sortBy`, ...).
fn macro_vars(func: &str, args: usize) -> Option<usize> {
    match (func, args) {
        ("all" | "exists" | "exists_one" | "existsOne", 2) => Some(1),
        ("all" | "exists" | "exists_one" | "existsOne", 3) => Some(2),
        ("map", 2 | 3) | ("filter" | "optMap" | "optFlatMap" | "sortBy", 2) => Some(1),
        ("transformList" | "transformMap" | "transformMapEntry", 3 | 4) => Some(2),
        _ => None,
    }
}

/// The fields of `vars` (`self`, `oldSelf`) that `e` selects, added to `out`; false when `e`
/// uses one of them otherwise (whole, as an argument, or shadowed by a comprehension
/// variable), and then the whole value is needed. A rule that only selects fields evaluates
/// the same on a value that has only those fields (see `schema::eval_rules`).
pub fn fields_selected(
    e: &IdedExpr,
    vars: &[&str],
    out: &mut std::collections::BTreeSet<String>,
) -> bool {
    match &e.expr {
        Expr::Ident(n) => !vars.contains(&n.as_str()),
        Expr::Select(s) => match &s.operand.expr {
            Expr::Ident(n) if vars.contains(&n.as_str()) => {
                out.insert(s.field.clone());
                true
            }
            _ => fields_selected(&s.operand, vars, out),
        },
        Expr::Comprehension(c)
            if [Some(&c.iter_var), Some(&c.accu_var), c.iter_var2.as_ref()]
                .into_iter()
                .flatten()
                .any(|v| vars.contains(&v.as_str())) =>
        {
            false
        }
        _ => children(e)
            .into_iter()
            .all(|c| fields_selected(c, vars, out)),
    }
}

/// The sub-expressions of a node, in the order [`Walker`] numbers them.
fn children(e: &IdedExpr) -> Vec<&IdedExpr> {
    match &e.expr {
        Expr::Call(c) => c
            .target
            .as_deref()
            .into_iter()
            .chain(c.args.iter())
            .collect(),
        Expr::Select(s) => vec![&s.operand],
        Expr::List(l) => l.elements.iter().collect(),
        Expr::Map(m) => m
            .entries
            .iter()
            .flat_map(|en| match &en.expr {
                EntryExpr::MapEntry(me) => vec![&me.key, &me.value],
                EntryExpr::StructField(sf) => vec![&sf.value],
            })
            .collect(),
        Expr::Struct(s) => s
            .entries
            .iter()
            .flat_map(|en| match &en.expr {
                EntryExpr::MapEntry(me) => vec![&me.key, &me.value],
                EntryExpr::StructField(sf) => vec![&sf.value],
            })
            .collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
        _ => Vec::new(),
    }
}

fn node_at<'e>(e: &'e IdedExpr, path: &[usize]) -> Option<&'e IdedExpr> {
    match path.split_first() {
        None => Some(e),
        Some((i, rest)) => node_at(children(e).get(*i)?, rest),
    }
}

struct Walker<'a> {
    env: &'a Env<'a>,
    scope: Vec<(String, Ty)>,
    path: Vec<usize>,
    found: Vec<Finding>,
}

impl Walker<'_> {
    fn child(&mut self, i: usize, e: &IdedExpr, role: Role) -> Ty {
        self.path.push(i);
        let t = self.walk(e, role);
        self.path.pop();
        t
    }

    fn in_scope(&self, name: &str) -> Option<Ty> {
        self.scope
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
    }

    fn walk(&mut self, e: &IdedExpr, role: Role) -> Ty {
        match &e.expr {
            Expr::Literal(l) => match l {
                LiteralValue::Boolean(_) => Ty::Bool,
                LiteralValue::Bytes(_) => Ty::Bytes,
                LiteralValue::Double(_) => Ty::Double,
                LiteralValue::Int(_) => Ty::Int,
                LiteralValue::Null => Ty::Null,
                LiteralValue::String(_) => Ty::String,
                LiteralValue::UInt(_) => Ty::Uint,
            },
            Expr::Ident(name) => self.ident(name, role),
            Expr::Select(s) => {
                if let Expr::Ident(root) = &s.operand.expr
                    && root == "variables"
                    && self.in_scope(root).is_none()
                    && let Some(vars) = self.env.variables
                {
                    if s.test {
                        return Ty::Bool;
                    }
                    return match vars.iter().rev().find(|(n, _)| *n == s.field) {
                        Some((_, t)) => t.clone(),
                        None => {
                            self.found.push(Finding {
                                path: self.path.clone(),
                                name: s.field.clone(),
                                field: true,
                            });
                            Ty::Unknown
                        }
                    };
                }
                let role = if matches!(s.operand.expr, Expr::Ident(_)) {
                    Role::SelectRoot
                } else {
                    Role::Plain
                };
                let t = self.child(0, &s.operand, role);
                if s.test {
                    return Ty::Bool;
                }
                match t {
                    Ty::Dyn => Ty::Dyn,
                    Ty::Map(_, v) => *v,
                    Ty::Obj(o) => o.field(&s.field).unwrap_or_else(|| {
                        self.found.push(Finding {
                            path: self.path.clone(),
                            name: s.field.clone(),
                            field: true,
                        });
                        Ty::Unknown
                    }),
                    _ => Ty::Unknown,
                }
            }
            Expr::Call(c) => self.call(c),
            Expr::List(l) => {
                let tys: Vec<Ty> = l
                    .elements
                    .iter()
                    .enumerate()
                    .map(|(i, el)| self.child(i, el, Role::Plain))
                    .collect();
                match tys.first() {
                    Some(t)
                        if t.is_primitive()
                            && l.optional_indices.is_empty()
                            && tys.iter().all(|x| x == t) =>
                    {
                        list(t.clone())
                    }
                    _ => Ty::Unknown,
                }
            }
            Expr::Map(_) | Expr::Struct(_) => {
                for (i, ch) in children(e).into_iter().enumerate() {
                    self.child(i, ch, Role::Plain);
                }
                Ty::Unknown
            }
            Expr::Comprehension(c) => {
                let range = self.child(0, &c.iter_range, Role::Plain);
                let accu = self.child(1, &c.accu_init, Role::Plain);
                let elem = match (&c.iter_var2, range) {
                    (Some(_), _) => Ty::Unknown,
                    (None, Ty::List(t)) => *t,
                    (None, Ty::Map(k, _)) => *k,
                    (None, Ty::Dyn) => Ty::Dyn,
                    _ => Ty::Unknown,
                };
                let depth = self.scope.len();
                self.scope.push((c.iter_var.clone(), elem));
                if let Some(v2) = &c.iter_var2 {
                    self.scope.push((v2.clone(), Ty::Unknown));
                }
                let accu = if accu == Ty::Bool { accu } else { Ty::Unknown };
                self.scope.push((c.accu_var.clone(), accu));
                self.child(2, &c.loop_cond, Role::Plain);
                self.child(3, &c.loop_step, Role::Plain);
                let t = self.child(4, &c.result, Role::Plain);
                self.scope.truncate(depth);
                t
            }
            Expr::Unspecified => Ty::Unknown,
        }
    }

    fn ident(&mut self, name: &str, role: Role) -> Ty {
        if let Some(t) = self.in_scope(name) {
            return t;
        }
        match name {
            "object" | "oldObject" => return Ty::Dyn,
            "request" => return Ty::Obj(Obj::Request),
            "namespaceObject" => return Ty::Obj(Obj::Namespace),
            "params" if self.env.params => return Ty::Dyn,
            "authorizer" if self.env.authorizer => return Ty::Unknown,
            "variables" if self.env.variables.is_some() => return Ty::Unknown,
            _ => {}
        }
        let declared = TYPE_IDENTS.contains(&name)
            || (role == Role::SelectRoot && TYPE_NAMESPACES.contains(&name))
            || (role == Role::CallTarget && FUNCTION_NAMESPACES.contains(&name));
        if !declared {
            self.found.push(Finding {
                path: self.path.clone(),
                name: name.to_string(),
                field: false,
            });
        }
        Ty::Unknown
    }

    fn call(&mut self, c: &cel::common::ast::CallExpr) -> Ty {
        let func = c.func_name.as_str();
        let off = usize::from(c.target.is_some());
        if let Some(target) = &c.target
            && let Some(n) = macro_vars(func, c.args.len())
            && c.args[..n].iter().all(|a| matches!(a.expr, Expr::Ident(_)))
        {
            self.child(0, target, Role::Plain);
            let depth = self.scope.len();
            for a in &c.args[..n] {
                if let Expr::Ident(v) = &a.expr {
                    self.scope.push((v.clone(), Ty::Unknown));
                }
            }
            for (i, a) in c.args.iter().enumerate().skip(n) {
                self.child(off + i, a, Role::Plain);
            }
            self.scope.truncate(depth);
            return match func {
                "all" | "exists" | "exists_one" | "existsOne" => Ty::Bool,
                _ => Ty::Unknown,
            };
        }
        let mut tys = Vec::with_capacity(c.args.len() + off);
        if let Some(target) = &c.target {
            let role = if matches!(target.expr, Expr::Ident(_)) {
                Role::CallTarget
            } else {
                Role::Plain
            };
            tys.push(self.child(0, target, role));
        }
        for (i, a) in c.args.iter().enumerate() {
            tys.push(self.child(off + i, a, Role::Plain));
        }
        let member = c.target.is_some();
        let args = c.args.len();
        use operators::*;
        match func {
            EQUALS | NOT_EQUALS | LESS | LESS_EQUALS | GREATER | GREATER_EQUALS | LOGICAL_AND
            | LOGICAL_OR | LOGICAL_NOT | IN | NOT_STRICTLY_FALSE => Ty::Bool,
            CONDITIONAL if tys.len() == 3 && tys[1] == tys[2] => tys[1].clone(),
            INDEX if tys.len() == 2 => match &tys[0] {
                Ty::Dyn => Ty::Dyn,
                Ty::List(t) => (**t).clone(),
                Ty::Map(_, v) => (**v).clone(),
                _ => Ty::Unknown,
            },
            ADD => match tys.as_slice() {
                [Ty::List(a), Ty::List(b)] if a == b => Ty::List(a.clone()),
                _ => arithmetic(
                    &tys,
                    &[Ty::Int, Ty::Uint, Ty::Double, Ty::String, Ty::Bytes],
                ),
            },
            SUBSTRACT | MULTIPLY | DIVIDE => arithmetic(&tys, &[Ty::Int, Ty::Uint, Ty::Double]),
            MODULO => arithmetic(&tys, &[Ty::Int, Ty::Uint]),
            NEGATE => match tys.as_slice() {
                [t @ (Ty::Int | Ty::Double)] => t.clone(),
                _ => Ty::Unknown,
            },
            "size" if (member && args == 0) || (!member && args == 1) => Ty::Int,
            "string" if !member && args == 1 => Ty::String,
            "int" if !member && args == 1 => Ty::Int,
            "uint" if !member && args == 1 => Ty::Uint,
            "double" if !member && args == 1 => Ty::Double,
            "bool" if !member && args == 1 => Ty::Bool,
            "bytes" if !member && args == 1 => Ty::Bytes,
            "dyn" if !member && args == 1 => Ty::Dyn,
            "startsWith" | "endsWith" if member && args == 1 => Ty::Bool,
            "matches" if (member && args == 1) || (!member && args == 2) => Ty::Bool,
            _ => Ty::Unknown,
        }
    }
}

/// The result of a homogeneous arithmetic operator: both operands of one of `allowed`, or
/// one of them `dyn` (only that overload takes the other).
fn arithmetic(tys: &[Ty], allowed: &[Ty]) -> Ty {
    match tys {
        [a, b] if a == b && allowed.contains(a) => a.clone(),
        [Ty::Dyn, b] if allowed.contains(b) => b.clone(),
        [a, Ty::Dyn] if allowed.contains(a) => a.clone(),
        _ => Ty::Unknown,
    }
}

// ---------------------------------------------------------------------------
// Locations
// ---------------------------------------------------------------------------

/// An identifier token: byte range, and the offset of the `.` selecting it, if any.
struct IdentToken {
    start: usize,
    end: usize,
    dot: Option<usize>,
}

/// The identifier tokens of a CEL source (strings, bytes, numbers and comments skipped).
fn ident_tokens(src: &str) -> Vec<IdentToken> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // Offset of the previous token when it was a `.`.
    let mut dot: Option<usize> = None;
    let ident_start = |c: u8| c == b'_' || c.is_ascii_alphabetic();
    let ident_part = |c: u8| c == b'_' || c.is_ascii_alphanumeric();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if ident_start(c) {
            let start = i;
            while i < b.len() && ident_part(b[i]) {
                i += 1;
            }
            let word = &src[start..i];
            let is_prefix = word.len() <= 2
                && word.chars().all(|ch| matches!(ch, 'r' | 'R' | 'b' | 'B'))
                && word.to_ascii_lowercase().matches('r').count() <= 1
                && word.to_ascii_lowercase().matches('b').count() <= 1;
            if is_prefix && matches!(b.get(i), Some(b'"' | b'\'')) {
                i = skip_string(b, i, word.contains(['r', 'R']));
            } else {
                out.push(IdentToken { start, end: i, dot });
            }
            dot = None;
        } else if c == b'"' || c == b'\'' {
            i = skip_string(b, i, false);
            dot = None;
        } else if c.is_ascii_digit() {
            while i < b.len() {
                let ch = b[i];
                if ident_part(ch)
                    || (ch == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
                    || ((ch == b'+' || ch == b'-') && matches!(b[i - 1], b'e' | b'E'))
                {
                    i += 1;
                } else {
                    break;
                }
            }
            dot = None;
        } else if c == b'`' {
            i += 1;
            while i < b.len() && b[i] != b'`' {
                i += 1;
            }
            i += 1;
            dot = None;
        } else {
            dot = (c == b'.').then_some(i);
            i += 1;
        }
    }
    out
}

/// The end of the string literal whose quote is at `i`.
fn skip_string(b: &[u8], mut i: usize, raw: bool) -> usize {
    let q = b[i];
    let triple = b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q);
    i += if triple { 3 } else { 1 };
    while i < b.len() {
        if !raw && b[i] == b'\\' {
            i += 2;
        } else if b[i] == q && (!triple || (b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q))) {
            return i + if triple { 3 } else { 1 };
        } else {
            i += 1;
        }
    }
    b.len()
}

/// Where cel-go reports a finding: the identifier, or the `.` of a select. Found by renaming
/// each candidate token and checking that the node at the finding's path is the renamed one.
fn locate(source: &str, f: &Finding) -> Option<usize> {
    let fresh = (0..)
        .map(|n| format!("ksimprobe{n}"))
        .find(|s| !source.contains(s.as_str()))?;
    ident_tokens(source)
        .into_iter()
        .filter(|t| source[t.start..t.end] == f.name && t.dot.is_some() == f.field)
        .find_map(|t| {
            let probe = format!("{}{}{}", &source[..t.start], fresh, &source[t.end..]);
            let e = parse(&probe).ok()?;
            let hit = match &node_at(&e, &f.path)?.expr {
                Expr::Ident(n) => !f.field && *n == fresh,
                Expr::Select(s) => f.field && s.field == fresh,
                _ => false,
            };
            hit.then(|| t.dot.unwrap_or(t.start))
        })
}

/// Register `matches` with compiled patterns kept: the `cel` crate compiles the pattern on every
/// call, and every Tenant and Partner write evaluates `self.metadata.name.matches(...)` (a
/// twentieth of kube-sim's time in a template change over 10,000 tenants went to compiling that one
/// regex). cel-go compiles a constant pattern once, with the program. Results and errors are
/// the crate's own; at most [`REGEX_CACHE`] patterns are kept (a pattern built from data cannot
/// grow the cache without bound: it starts again empty when full).
pub fn with_cached_matches(ctx: &mut cel::Context<'static>) {
    ctx.add_function("matches", cached_matches);
}

/// Patterns kept by [`with_cached_matches`].
pub const REGEX_CACHE: usize = 256;

fn cached_matches(
    ftx: &cel::FunctionContext,
    cel::extractors::This(this): cel::extractors::This<std::sync::Arc<String>>,
    regex: std::sync::Arc<String>,
) -> Result<bool, cel::ExecutionError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Result<regex::Regex, String>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let compiled = {
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        match cache.get(regex.as_str()) {
            Some(c) => c.clone(),
            None => {
                let c = regex::Regex::new(&regex).map_err(|e| e.to_string());
                if cache.len() >= REGEX_CACHE {
                    cache.clear();
                }
                cache.insert(regex.to_string(), c.clone());
                c
            }
        }
    };
    match compiled {
        Ok(re) => Ok(re.is_match(&this)),
        Err(err) => Err(ftx.error(format!("'{regex}' not a valid regex:\n{err}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env<'static> {
        Env {
            params: false,
            authorizer: true,
            variables: None,
        }
    }

    fn err(src: &str, env: &Env, want: Want) -> String {
        check(src, env, want).expect_err(src)
    }

    #[test]
    fn parse_errors_render_as_cel_go_does() {
        assert_eq!(
            err("'a 'b' c'", &env(), Want::String),
            "compilation failed: ERROR: <input>:1:5: Syntax error: extraneous input 'b' c'' expecting <EOF>\n | 'a 'b' c'\n | ....^"
        );
        assert_eq!(
            err("object.x >", &env(), Want::Bool),
            "compilation failed: ERROR: <input>:1:11: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n | object.x >\n | ..........^"
        );
        assert_eq!(
            err("object.(", &env(), Want::Any),
            "compilation failed: ERROR: <input>:1:8: Syntax error: no viable alternative at input '.('\n | object.(\n | .......^"
        );
        // Optional syntax is on, as in the Kubernetes environments.
        check(
            "object.?x.orValue(1) == 1 && [?object.?y].size() >= 0",
            &env(),
            Want::Bool,
        )
        .unwrap();
    }

    #[test]
    fn undeclared_references_are_located_like_cel_go() {
        assert_eq!(
            err("foo == 1", &env(), Want::Bool),
            "compilation failed: ERROR: <input>:1:1: undeclared reference to 'foo' (in container '')\n | foo == 1\n | ^"
        );
        // Bound in the first comprehension only.
        assert_eq!(
            err("[1].map(z, z).size() == 1 && z == 1", &env(), Want::Bool),
            "compilation failed: ERROR: <input>:1:30: undeclared reference to 'z' (in container '')\n | [1].map(z, z).size() == 1 && z == 1\n | .............................^"
        );
        assert_eq!(
            err("x.all(x, true)", &env(), Want::Bool),
            "compilation failed: ERROR: <input>:1:1: undeclared reference to 'x' (in container '')\n | x.all(x, true)\n | ^"
        );
        // Second line, in a string the name is not a token.
        assert_eq!(
            err("'params' != '' &&\n  params.x == 1", &env(), Want::Bool),
            "compilation failed: ERROR: <input>:2:3: undeclared reference to 'params' (in container '')\n |   params.x == 1\n | ..^"
        );
        // authorizer is not declared for messageExpressions, variables only with variables.
        let no_authz = Env {
            authorizer: false,
            ..env()
        };
        assert!(
            err("authorizer.path('/').check('get').allowed() ? 'a' : 'b'", &no_authz, Want::String)
                .starts_with("compilation failed: ERROR: <input>:1:1: undeclared reference to 'authorizer' (in container '')")
        );
        assert!(
            err("variables.a", &env(), Want::Any).contains("undeclared reference to 'variables'")
        );
        // Every occurrence, sorted.
        assert_eq!(
            err("a || b || a", &env(), Want::Bool)
                .matches("ERROR: ")
                .count(),
            3
        );
    }

    #[test]
    fn declared_names_macros_and_namespaces_pass() {
        let with_params = Env {
            params: true,
            ..env()
        };
        for ok in [
            "object.items.all(x, x > 1) && [1].exists(y, y == 1) && has(object.x) && type(object) == map",
            "int('1') == 1 && int == type(1) && dyn(object) == null",
            "object.data.all(k, v, v != '') && object.data.exists(k, v, v != '')",
            "[1].transformList(i, v, v).size() == 1 && {'a': 1}.transformMap(k, v, v).size() == 1",
            "object.?x.optMap(v, v).hasValue() && [1].sortBy(x, x).size() == 1",
            "optional.none() == optional.of(1) && strings.quote('a') != '' && sets.contains([1], [1])",
            "lists.range(3).size() == 3 && ip.isCanonical('1.2.3.4')",
            "google.protobuf.Timestamp == type(object)",
            "request.userInfo.username == namespaceObject.metadata.name && oldObject == null",
            "authorizer.group('').resource('pods').check('get').allowed()",
            "params.x == 1",
        ] {
            check(ok, &with_params, Want::Bool).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let vars = [("a".to_string(), Ty::Int)];
        let with_vars = Env {
            variables: Some(&vars),
            ..env()
        };
        check("variables.a == 1", &with_vars, Want::Bool).unwrap();
        assert_eq!(
            err("variables.a == variables.b", &with_vars, Want::Bool),
            "compilation failed: ERROR: <input>:1:25: undefined field 'b'\n | variables.a == variables.b\n | ........................^"
        );
        assert_eq!(
            err("request.nope == 1", &env(), Want::Bool),
            "compilation failed: ERROR: <input>:1:8: undefined field 'nope'\n | request.nope == 1\n | .......^"
        );
    }

    #[test]
    fn result_types_that_are_certain() {
        let vars = [("s".to_string(), Ty::Dyn), ("n".to_string(), list(Ty::Int))];
        let e = Env {
            variables: Some(&vars),
            ..env()
        };
        for (src, want, msg) in [
            (
                "object.spec.enabled",
                Want::Bool,
                "must evaluate to bool but got dyn",
            ),
            ("'x'", Want::Bool, "must evaluate to bool but got string"),
            ("1", Want::String, "must evaluate to string but got int"),
            ("1.5", Want::Bool, "must evaluate to bool but got double"),
            (
                "object.metadata.name",
                Want::String,
                "must evaluate to string but got dyn",
            ),
            (
                "null",
                Want::Bool,
                "must evaluate to bool but got null_type",
            ),
            (
                "variables.s",
                Want::Bool,
                "must evaluate to bool but got dyn",
            ),
            ("[1]", Want::Bool, "must evaluate to bool but got list(int)"),
            (
                "b'x'",
                Want::String,
                "must evaluate to string but got bytes",
            ),
            (
                "object['a']",
                Want::Bool,
                "must evaluate to bool but got dyn",
            ),
            (
                "request.name",
                Want::Bool,
                "must evaluate to bool but got string",
            ),
            (
                "request.userInfo.groups",
                Want::String,
                "must evaluate to string but got list(string)",
            ),
            ("1u", Want::Bool, "must evaluate to bool but got uint"),
            (
                "object.x ? 1 : 2",
                Want::Bool,
                "must evaluate to bool but got int",
            ),
            (
                "variables.n",
                Want::Bool,
                "must evaluate to bool but got list(int)",
            ),
            (
                "object.x",
                Want::StringOrNull,
                "must evaluate to one of [string null_type] but got dyn",
            ),
            (
                "1.0",
                Want::StringOrNull,
                "must evaluate to one of [string null_type] but got double",
            ),
        ] {
            assert_eq!(err(src, &e, want), msg, "{src}");
        }
        for (src, want) in [
            ("'a' + object.metadata.name", Want::String),
            ("request.name + string(object)", Want::String),
            ("null", Want::StringOrNull),
            ("variables.s == 1", Want::Bool),
            ("object.x.y.z()", Want::Bool),
            ("object.a + object.b", Want::String),
            ("[object.a, 1]", Want::Any),
        ] {
            check(src, &e, want).unwrap_or_else(|m| panic!("{src}: {m}"));
        }
        assert_eq!(check("size(object) + 1", &e, Want::Any).unwrap().1, Ty::Int);
    }

    /// The cached `matches` answers as the crate's own: true, false, and the same error for a
    /// pattern that does not compile, on the first call and on later ones (cached).
    #[test]
    fn cached_matches_answers_as_the_crates_own() {
        let plain = cel::Context::default();
        let mut cached = cel::Context::default();
        with_cached_matches(&mut cached);
        for src in [
            "'tenant-a'.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
            "'Tenant_A'.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
            "'abc'.matches('[')",
        ] {
            let program = cel::Program::compile(src).unwrap();
            let want = format!("{:?}", program.execute(&plain));
            for _ in 0..2 {
                assert_eq!(format!("{:?}", program.execute(&cached)), want, "{src}");
            }
        }
        let yes = cel::Program::compile("'x-1'.matches('^x-[0-9]$')").unwrap();
        assert_eq!(yes.execute(&cached).unwrap(), cel::Value::Bool(true));
        let bad = cel::Program::compile("'abc'.matches('[')").unwrap();
        assert!(
            format!("{:?}", bad.execute(&cached).unwrap_err()).contains("not a valid regex"),
            "an invalid pattern is an error"
        );
    }

    /// Fields selected from `self`/`oldSelf`, or none known when a rule uses the value whole.
    #[test]
    fn fields_selected_finds_what_a_rule_reads() {
        let fields = |src: &str| {
            let mut out = std::collections::BTreeSet::new();
            let e = parse(src).unwrap();
            fields_selected(&e, &["self", "oldSelf"], &mut out)
                .then(|| out.into_iter().collect::<Vec<_>>())
        };
        assert_eq!(
            fields("self.metadata.name.matches('^a$') && size(self.metadata.name) <= 50"),
            Some(vec!["metadata".to_string()])
        );
        assert_eq!(
            fields("has(self.spec) && self.spec.x == oldSelf.status.y"),
            Some(vec!["spec".to_string(), "status".to_string()])
        );
        assert_eq!(
            fields("self.spec.items.all(i, i.x > 0)"),
            Some(vec!["spec".to_string()])
        );
        assert_eq!(fields("self == oldSelf"), None);
        assert_eq!(fields("size(self) > 0"), None);
        assert_eq!(fields("self.?spec.orValue(1) == 1"), None);
        assert_eq!(fields("[1].all(self, self > 0) && self.a == 1"), None);
    }
}
