# Nobody becomes an account owner through a bot.
package provision.rules.account_owner

import rego.v1

findings contains f if {
	some rc in input.resource_changes
	rc.type == "null_resource"
	data.provision.plan.changing(rc)
	rc.change.after.triggers.kind == "account_access"
	lower(rc.change.after.triggers.role) == "owner"
	f := finding(rc, rc.change.after.triggers.email)
}

findings contains f if {
	some rc in input.resource_changes
	rc.type == "temporalcloud_user"
	data.provision.plan.changing(rc)
	lower(rc.change.after.account_access) == "owner"
	f := finding(rc, rc.change.after.email)
}

finding(rc, email) := {
	"id": "account_owner",
	"level": "hard-mandatory",
	"message": sprintf("%s makes %s an account owner", [rc.address, email]),
	"resource": rc.address,
}
