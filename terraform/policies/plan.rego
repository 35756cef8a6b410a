# Shared predicates over one `resource_changes[]` entry of the `terraform show -json` document.
package provision.plan

import rego.v1

# Created or updated: what a grant or a setting is judged on.
changing(rc) if {
	some action in rc.change.actions
	action in {"create", "update"}
}

# Deleted, including the delete half of a replacement.
deleting(rc) if "delete" in rc.change.actions

# Anything but a no-op or a read.
changed(rc) if changing(rc)

changed(rc) if deleting(rc)
