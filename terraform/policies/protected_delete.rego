# Destroying (or replacing) something marked protected needs a human to agree.
package provision.rules.protected_delete

import rego.v1

findings contains f if {
	some rc in input.resource_changes
	data.provision.plan.deleting(rc)
	rc.change.before.triggers.protected == "true"
	f := {
		"id": "protected_delete",
		"level": "soft-mandatory",
		"message": sprintf("%s is marked protected and would be deleted", [rc.address]),
		"resource": rc.address,
	}
}
