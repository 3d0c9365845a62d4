"""Every stack output name, in one place: other teams read these with StackReference, so they are a
contract. Renaming one is a breaking change; tests pin the set."""

from typing import Final

ALERT_TOPIC_ARN: Final = "alertTopicArn"
ALERT_KEY_ARN: Final = "alertKeyArn"
RESPONDERS_TOPIC_ARN: Final = "respondersTopicArn"
ALERT_PUBLISH_ROLE_ARN: Final = "alertPublishRoleArn"
AUDIT_ROLE_ARN: Final = "auditRoleArn"
AUDIT_SCHEDULE_NAMES: Final = "auditScheduleNames"
DETECT_ENABLED: Final = "detectEnabled"
RULE_PROFILE_NAME: Final = "ruleSecurityProfileName"
RULE_PROFILE_ARN: Final = "ruleSecurityProfileArn"
ML_PROFILE_NAME: Final = "mlSecurityProfileName"
ML_PROFILE_ARN: Final = "mlSecurityProfileArn"
