# Granting namespace admin needs a human to agree.
package provision.rules.namespace_admin

import rego.v1

findings contains f if {
	some rc in input.resource_changes
	rc.type == "null_resource"
	data.provision.plan.changing(rc)
	rc.change.after.triggers.kind == "namespace_access"
	lower(rc.change.after.triggers.permission) == "admin"
	f := finding(rc, rc.change.after.triggers.email)
}

findings contains f if {
	some rc in input.resource_changes
	rc.type == "temporalcloud_user"
	data.provision.plan.changing(rc)
	some access in rc.change.after.namespace_accesses
	lower(access.permission) == "admin"
	f := finding(rc, rc.change.after.email)
}

finding(rc, email) := {
	"id": "namespace_admin",
	"level": "soft-mandatory",
	"message": sprintf("%s grants namespace admin to %s", [rc.address, email]),
	"resource": rc.address,
}
