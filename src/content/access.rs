//! The access rules of content.md ("Access levels and plan overrides"), one node at a
//! time: given a node, its plan overrides and its parent's decided access, the first of
//! rules 2–9 that applies decides the level and the effective item(s). Rule 1 (hidden)
//! is the view builder's business: a hidden node gets no access at all.

use std::sync::Arc;

use super::model::{Action, Plan};
use super::tree::TreeNode;
use super::view::{Access, AccessLevel, NodeKind};

/// A level-deciding override (at most one per target).
#[derive(Debug, Clone, PartialEq)]
pub enum LevelOverride {
    /// `set_free`.
    Free,
    /// `set_access_level`.
    Level(AccessLevel),
    /// `set_sold_separately ITEM` (tracks).
    SoldSeparately(Arc<str>),
}

/// Every override of one plan that targets one node, combined.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeOverrides {
    /// `hide`.
    pub hide: bool,
    /// The level-deciding override, if any.
    pub level: Option<LevelOverride>,
    /// `set_linear`.
    pub linear: Option<bool>,
    /// `rename`.
    pub rename: Option<Arc<str>>,
}

/// Groups a plan's overrides by lowercased target id. Validation guarantees at most one
/// override of each kind per target; should a stored plan still hold two, the first wins.
pub fn overrides_by_target(plan: &Plan) -> std::collections::HashMap<Box<str>, NodeOverrides> {
    let mut map: std::collections::HashMap<Box<str>, NodeOverrides> = Default::default();
    for o in &plan.overrides {
        let e = map.entry(o.target.to_ascii_lowercase().into()).or_default();
        match &o.action {
            Action::Hide => e.hide = true,
            Action::SetFree => {
                e.level.get_or_insert(LevelOverride::Free);
            }
            Action::SetAccessLevel(l) => {
                e.level.get_or_insert(LevelOverride::Level(*l));
            }
            Action::SetSoldSeparately(item) => {
                e.level
                    .get_or_insert_with(|| LevelOverride::SoldSeparately(item.as_str().into()));
            }
            Action::SetLinear(b) => {
                e.linear.get_or_insert(*b);
            }
            Action::Rename(t) => {
                e.rename.get_or_insert_with(|| t.as_str().into());
            }
        }
    }
    map
}

/// The parent's decision as seen by a child.
#[derive(Debug, Clone)]
pub struct Inherited<'a> {
    /// The parent's access (`None` for a subject).
    pub parent: Option<&'a Access>,
    /// The nearest item(s) at or above the parent: what `set_access_level paid` uses when
    /// the node has no item of its own. An island contributes all its items.
    pub nearest_items: &'a [Arc<str>],
}

/// The decided access of a node, and the nearest item(s) its children inherit.
#[derive(Debug, Clone)]
pub struct Decision {
    /// This node's access.
    pub access: Access,
    /// Nearest item(s) at or above this node.
    pub nearest_items: Vec<Arc<str>>,
}

fn paid(items: Vec<Arc<str>>) -> Access {
    Access {
        level: AccessLevel::Paid,
        items,
    }
}

fn level(level: AccessLevel) -> Access {
    Access {
        level,
        items: Vec::new(),
    }
}

/// Items of an island with item `own`: its own item, plus the parent's effective item(s)
/// under `parent_item_required` when the parent is paid.
fn island_items(node: &TreeNode, own: &Arc<str>, parent: Option<&Access>) -> Vec<Arc<str>> {
    let mut items = vec![own.clone()];
    if node.parent_item_required
        && let Some(p) = parent.filter(|p| p.level == AccessLevel::Paid)
    {
        for item in &p.items {
            if !items.contains(item) {
                items.push(item.clone());
            }
        }
    }
    items
}

/// Applies rules 2–9 to a visible node.
///
/// `set_sold_separately` honours the track's `parent_item_required` like a document
/// island does (rule 4). A `set_access_level paid` with no item at or above the node
/// (rejected by validation) is ignored and the later rules decide.
pub fn decide(node: &TreeNode, ov: Option<&NodeOverrides>, inh: &Inherited<'_>) -> Decision {
    let parent = inh.parent;
    let doc_island = (node.kind == NodeKind::Track && node.sold_separately)
        .then_some(node.item.as_ref())
        .flatten();
    let level_ov = ov.and_then(|o| o.level.as_ref());

    // The items this node defines itself, which its children see as "nearest".
    let own_items: Option<Vec<Arc<str>>> = match (level_ov, doc_island, &node.item) {
        (Some(LevelOverride::SoldSeparately(item)), _, _) => Some(island_items(node, item, parent)),
        (_, Some(item), _) => Some(island_items(node, item, parent)),
        (_, None, Some(item)) => Some(vec![item.clone()]),
        _ => None,
    };
    let nearest_items = own_items
        .clone()
        .unwrap_or_else(|| inh.nearest_items.to_vec());

    let access = (|| {
        // Rule 2.
        match level_ov {
            Some(LevelOverride::Free) => return level(AccessLevel::FreePreview),
            Some(LevelOverride::SoldSeparately(_)) => {
                return paid(own_items.clone().unwrap_or_default());
            }
            Some(LevelOverride::Level(AccessLevel::Paid)) if !nearest_items.is_empty() => {
                return paid(nearest_items.clone());
            }
            Some(LevelOverride::Level(AccessLevel::Paid)) | None => {}
            Some(LevelOverride::Level(l)) => return level(*l),
        }
        // Rule 3.
        if node.is_free_preview {
            return level(AccessLevel::FreePreview);
        }
        // Rule 4.
        if let Some(item) = doc_island {
            return paid(island_items(node, item, parent));
        }
        let parent_level = parent.map(|p| p.level);
        // Rule 5.
        if parent_level == Some(AccessLevel::FreePreview) {
            return level(AccessLevel::FreePreview);
        }
        // Rule 6.
        if let Some(item) = &node.item {
            return paid(vec![item.clone()]);
        }
        match parent {
            // Rule 7.
            Some(p) if p.level == AccessLevel::Paid => paid(p.items.clone()),
            // Rule 8.
            Some(p) if p.level == AccessLevel::Public => level(AccessLevel::Public),
            // Rule 9.
            _ => level(AccessLevel::Authenticated),
        }
    })();
    Decision {
        access,
        nearest_items,
    }
}
